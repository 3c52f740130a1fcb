"""Handlers ``devkit.coldstart`` runs next to the example, each as its task's handler.py."""
