"""Lab 1's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Tensors, strides and views"
TASKS = [
    ("1.1", "strides and indexing: contiguous_strides, flat_index, is_contiguous", 3),
    ("1.2", "views: permute, transpose, slice", 3),
    ("1.3", "reshape: a view when the strides allow, a copy otherwise", 4),
    ("1.4", "broadcasting: broadcast_shapes, broadcast_to, add", 3),
]
