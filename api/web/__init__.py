"""The web page: server-rendered HTML over the same Library calls as the JSON API."""
