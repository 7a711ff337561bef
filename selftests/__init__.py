"""gupvm's test plans; the wheel ships this folder as the package orchestrator.plans."""
