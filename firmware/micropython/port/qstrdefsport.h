// qstrs of the port (none: the module's are found in its sources)
