"""The wire protocol, the ZeroMQ transport and the ML-Agents control plane."""
