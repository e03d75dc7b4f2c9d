"""Test configuration: hypothesis profiles and the PyTorch oracle.

Profiles: ``fast`` (default, keeps the suite under a few minutes on 2 cores) and
``thorough`` (``TINYFW_HYPOTHESIS=thorough``: many more examples per property).
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TINYFW_HYPOTHESIS", "fast"))
