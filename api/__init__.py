"""HTTP API of the deepfake detector (FastAPI on uvicorn): `create_app(settings, analyzer)`."""
from .config import ApiConfig

__all__ = ["ApiConfig", "create_app"]


def create_app(*args, **kwargs):  # imported lazily: `import api` must not pull in FastAPI and torch
    from .app import create_app as _create_app
    return _create_app(*args, **kwargs)
