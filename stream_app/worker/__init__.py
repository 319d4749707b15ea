"""The Faust side: the only code that imports faust, thin glue around ``core/pipeline``."""
