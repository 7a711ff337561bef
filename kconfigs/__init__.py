"""gupvm's Kconfig fragments; the wheel ships this folder as the package orchestrator.kconfigs."""
