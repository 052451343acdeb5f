"""Real-time decision service: the same models, economics and prices as the offline plan."""
