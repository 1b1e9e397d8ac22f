# pg_tenant: every target sets up what a fresh Debian 12 machine lacks (scripts/bootstrap.sh) and
# skips what is already there.
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG

.PHONY: demo test bench bootstrap install regress unit clean

demo: install
	scripts/demo.sh

test: install
	scripts/test.sh

bench: install
	scripts/bench.sh

bootstrap:
	scripts/bootstrap.sh

install: bootstrap
	scripts/install.sh

regress: install
	tests/pg_regress/run.sh

unit: bootstrap
	scripts/unit.sh

clean:
	cargo clean
	rm -rf tests/pg_regress/results tests/pg_regress/regression.*
