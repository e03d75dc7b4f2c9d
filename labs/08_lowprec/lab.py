"""Lab 8's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Loss scaling and int8 quantization"
TASKS = [
    ("8.1", "unscale the gradients, detect inf/NaN, skip the step", 3),
    ("8.2", "the dynamic scale: back off on overflow, grow after clean steps", 2),
    ("8.3", "affine quantization parameters, quantize and dequantize", 3),
    ("8.4", "an int8 Linear: per-channel weights, calibrated activations, int32 accumulation", 4),
]
