"""`lakehouse`: the command line client of the Datasource API (it talks to the API only)."""
