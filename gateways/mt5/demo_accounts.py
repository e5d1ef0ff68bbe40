"""The ten demo accounts the simulated MT5 server starts with (`seed_demo_accounts()`)."""

# login, name, group, country, lead source, balance, credit, leverage, open positions
# (symbol, side, lots, open price, floating profit). 10005 sits in drawdown (equity <= credit).
DEMO_ACCOUNTS = [
    (10001, "Alice Martin", "real\\standard", "United Kingdom", "IB-ALPHA", "5000", "0", 500, []),
    (10002, "Bruno Costa", "real\\standard", "Brazil", "", "1200", "0", 200, []),
    (10003, "Chen Wei", "real\\pro", "Singapore", "IB-BETA", "25000", "2500", 100,
     [("EURUSD", "buy", "2", "1.08450", "340.50")]),
    (10004, "Dana Kowalski", "real\\vip", "Poland", "", "100000", "10000", 100,
     [("XAUUSD", "sell", "1", "2350.10", "-1250.00")]),
    (10005, "Emeka Obi", "real\\standard", "Nigeria", "IB-ALPHA", "300", "150", 500,
     [("GBPUSD", "buy", "0.5", "1.27010", "-420.00")]),
    (10006, "Fatima Zahra", "real\\pro", "Morocco", "IB-GAMMA", "8000", "0", 200, []),
    (10007, "Giulia Russo", "real\\standard", "Italy", "", "50", "0", 500, []),
    (10008, "Hiroshi Tanaka", "real\\vip", "Japan", "IB-BETA", "50000", "0", 200,
     [("USDJPY", "buy", "3", "151.250", "95.00")]),
    (10009, "Ines Duarte", "demo\\standard", "Portugal", "", "10000", "0", 100, []),
    (10010, "Jonas Berg", "demo\\standard", "Germany", "", "750", "0", 100, []),
]  # fmt: skip
