"""Pipeline assembly and the tunepipe command-line interface."""
