"""The cloudfn console (Textual) and the `cloudfn` command line."""
