"""bioverify: face and voice identity verification service."""

import os as _os

# A bank's service must not phone home: onnxruntime reads this when it is first imported.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
