"""Serpens itself, driven from Python (docs/serpens.md):

* :mod:`harness.serpens.controller`: :class:`Controller`, the client of serpensd's control socket
  (docs/serpens-control.md);
* :mod:`harness.serpens.sfc`: Fig. 8's ``chain`` / ``distribute`` / ``aggregate``, :class:`SfcSpec` and SFC
  files;
* :mod:`harness.serpens.platform`: :class:`DesignPlatform`, serpensd running one design of the registry
  (harness/platforms/designs.py): ``serpens``, ``fission``, ``sand-chaining``, ...
"""

# Everything here imports harness.platforms (base, designs): load it first so that any import order works.
from harness import platforms as _platforms  # noqa: F401, I001
from harness.serpens.controller import Controller, SerpensConnectionError, SerpensError
from harness.serpens.platform import DesignPlatform
from harness.serpens.sfc import SfcError, SfcSpec, aggregate, chain, distribute, load_sfc_file

__all__ = ["Controller", "SerpensConnectionError", "SerpensError", "DesignPlatform", "SfcError", "SfcSpec",
           "aggregate", "chain", "distribute", "load_sfc_file"]
