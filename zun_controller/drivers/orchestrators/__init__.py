"""Orchestrators: one Application on one container orchestration engine."""
