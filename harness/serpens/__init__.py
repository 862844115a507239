"""Serpens itself, driven from Python: the controller for serpensd (native/serpensd), SFC deployment and the
`serpens` platform. Built by the Serpens-core issue; nothing here yet."""
