"""The values layer, beneath the rules: kinds of values, gradient algebra, the gradient context,
``Record``, structure types, version checks and materialisation. It imports nothing from
``rules`` or ``ad``."""
