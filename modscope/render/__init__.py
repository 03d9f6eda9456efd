"""Renderers: results -> rich renderables (``rich``) or a JSON document (``json``). No computing here."""
