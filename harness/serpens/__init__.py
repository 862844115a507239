"""Serpens itself, driven from Python (docs/serpens.md):

* :mod:`harness.serpens.controller`: :class:`Controller`, the client of serpensd's control socket
  (docs/serpens-control.md);
* :mod:`harness.serpens.sfc`: Fig. 8's ``chain`` / ``distribute`` / ``aggregate``, :class:`SfcSpec` and SFC
  files;
* :mod:`harness.serpens.platform`: :class:`SerpensPlatform`, the ``serpens`` platform of the harness.
"""

# The platform registry (harness.platforms) imports SerpensPlatform, and everything here imports
# harness.platforms.base: load the registry first so that any import order works.
from harness import platforms as _platforms  # noqa: F401, I001
from harness.serpens.controller import Controller, SerpensConnectionError, SerpensError
from harness.serpens.platform import SerpensPlatform
from harness.serpens.sfc import SfcError, SfcSpec, aggregate, chain, distribute, load_sfc_file

__all__ = ["Controller", "SerpensConnectionError", "SerpensError", "SerpensPlatform", "SfcError", "SfcSpec",
           "aggregate", "chain", "distribute", "load_sfc_file"]
