"""An example workbench plugin: the eraser 'damp', the attack 'emphasis' and the judge 'brightness',
registered through entry points (pyproject.toml). Each module imports no torch at the top, so
`workbench --help` stays fast; the work happens inside ``run`` / ``build``."""
