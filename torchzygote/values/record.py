"""``Record``: the gradient of an object, named tuple or closure (one field per attribute)."""


class Record:
    """The gradient of an object, named tuple or closure: one attribute per field."""

    __slots__ = ("_fields",)

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self._fields[name]

    def keys(self):
        return self._fields.keys()

    def items(self):
        return self._fields.items()

    def values(self):
        return self._fields.values()

    def __iter__(self):
        return iter(self._fields.values())

    def __len__(self):
        return len(self._fields)

    def __eq__(self, other):
        return isinstance(other, Record) and self._fields == other._fields

    def __repr__(self):
        return "(" + ", ".join(f"{k} = {v!r}" for k, v in self._fields.items()) + ")"

    def __setattr__(self, name, value):
        raise AttributeError("Record is immutable")
