"""The studio window (PySide6 + pyqtgraph). It knows the engine only through its public API and events."""
