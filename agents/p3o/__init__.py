from agents.p3o.p3o import P3O

__all__ = ["P3O"]
