"""MetaQuotes MT5 Manager Web API: the client (handshake, session, gateway) and its stand-in."""
