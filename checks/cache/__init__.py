"""The cache check. The check class lives in .check (the entry point); nothing is imported here,
so naming the package costs nothing."""
