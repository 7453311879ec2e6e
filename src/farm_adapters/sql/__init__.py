"""The SQL adapter: tables, engines, one repository module per aggregate and the unit of work."""
