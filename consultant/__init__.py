"""CaseConsultant: medical coding questions by email, answered from official code sets."""

__version__ = "0.1.0"
