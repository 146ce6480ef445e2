"""How the dashboard is served and who may use it: the server inside the monitor process, the
Host/Origin guard in front of it, logins and their limits, and the runtime the pages share."""
