"""Training machinery: devices, seeding, loops (the only place that knows devices)."""

from skxmc.training._device import resolve_device

__all__ = ["resolve_device"]
