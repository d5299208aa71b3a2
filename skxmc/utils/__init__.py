"""Utilities shared by skxmc's estimators, engines and tests."""
