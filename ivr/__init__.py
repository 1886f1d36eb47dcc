"""IVR: declarative phone menus run over AsyncAGI (issue: IVR)."""
