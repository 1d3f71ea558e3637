"""Forewarn: a proactive monitoring agent that speaks to business owners."""

__version__ = "0.1.0"
