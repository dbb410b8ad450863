# Thin wrapper over ./dev for people who type make.
.PHONY: run test unit lint bench
run: ; ./dev run
test: ; ./dev test
unit: ; ./dev unit
lint: ; ./dev lint
bench: ; ./dev bench
