"""The README's options table and the sample config cannot drift from the code."""

from __future__ import annotations

import os

from oslo_config import generator

from nova_notifier import opts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_readme_options_table_matches_list_opts():
    readme = _read("README.md")
    start = readme.index("<!-- options:start -->\n") + len("<!-- options:start -->\n")
    end = readme.index("<!-- options:end -->")
    assert readme[start:end] == opts.options_markdown(), (
        "regenerate with: bash tools/regen-docs.sh"
    )


def test_sample_config_matches_generator(tmp_path):
    out = tmp_path / "sample.conf"
    conf = generator.cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(
        [
            "--config-file",
            os.path.join(ROOT, "etc", "nova-notifier-config-generator.conf"),
            "--output-file",
            str(out),
        ]
    )
    generator.generate(conf)
    assert out.read_text() == _read("etc", "nova-notifier.conf.sample"), (
        "regenerate with: oslo-config-generator --config-file "
        "etc/nova-notifier-config-generator.conf"
    )
