from agents.cpo.cpo import CPO

__all__ = ["CPO"]
