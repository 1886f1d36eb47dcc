"""Configuration: TOML plus environment overrides, checked with errors a person can act on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernel import config
from kernel.exceptions import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "callcenter.toml"
    path.write_text(text)
    return path


def test_file_values_and_env_overrides(tmp_path):
    path = write(tmp_path, '[ami]\nhost = "10.0.0.5"\nport = 5039\nsecret = "from-file"\n[database]\nurl = "sqlite:///x.db"\n')
    settings = config.load(path, require=("ami",), environ={"CALLCENTER_AMI_PORT": "6000", "CALLCENTER_AMI_PING_INTERVAL": "2.5"})
    assert settings.ami.host == "10.0.0.5"
    assert settings.ami.port == 6000 and settings.ami.ping_interval == 2.5
    assert settings.ami.secret.get_secret_value() == "from-file"
    assert settings.database.url == "sqlite:///x.db"


def test_secret_never_shows_in_repr(tmp_path):
    settings = config.load(write(tmp_path, '[ami]\nsecret = "hunter2"\n'), environ={})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[ami]\nprot = 5038\n", "callcenter.toml: ami.prot: unknown key (did you mean port?)"),
        ('[ami]\nport = "5038"\n', "ami.port: Input should be a valid integer"),
        ("[ami]\nport = 70000\n", "ami.port: Input should be less than or equal to 65535"),
        ("[amy]\nport = 1\n", "amy: unknown key (did you mean ami?)"),
        ("[panel]\nzzz = 1\n", "panel.zzz: unknown key"),
        ('[panel]\ntimezone = "Mars/Olympus"\n', "panel.timezone: Value error, unknown time zone 'Mars/Olympus'"),
        ('[database]\nurl = "nosuchdb://"\n', "database.url: Value error, not a database URL SQLAlchemy can open"),
        ('[acd.queues."sup,port"]\n', "acd.queues: Value error, queue name 'sup,port': letters, digits"),
        ("[ami\n", "not valid TOML"),
        ('[acd.queues.support]\nstrategy = "loudest"\n', "acd.queues.support.strategy: Value error, unknown strategy 'loudest'"),
    ],
)
def test_bad_file_values_name_file_and_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), environ={})
    assert expected in str(info.value)
    assert str(tmp_path / "callcenter.toml") in str(info.value)


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="CALLCENTER_AMI_PORT: Input should be a valid integer"):
        config.load(write(tmp_path, ""), environ={"CALLCENTER_AMI_PORT": "fifty"})
    with pytest.raises(ConfigError, match=r"CALLCENTER_AMI_SECRETT: unknown setting \(did you mean CALLCENTER_AMI_SECRET\?\)"):
        config.load(write(tmp_path, ""), environ={"CALLCENTER_AMI_SECRETT": "x"})
    with pytest.raises(ConfigError, match=r"CALLCENTER_DATABSE_URL: unknown setting \(did you mean CALLCENTER_DATABASE_URL\?\)"):
        config.load(write(tmp_path, ""), environ={"CALLCENTER_DATABSE_URL": "sqlite://"})
    with pytest.raises(ConfigError, match=r"CALLCENTER_PANEL_WHATEVER: unknown setting \(no such setting in \[panel\]\)"):
        config.load(write(tmp_path, ""), environ={"CALLCENTER_PANEL_WHATEVER": "1"})


def test_variables_that_are_no_settings_are_other_tools_and_left_alone(tmp_path):
    others = {
        "CALLCENTER_TEST_ASTERISK": "/opt/asterisk/run",
        "CALLCENTER_TEST_PG_URL": "postgresql://x",
        "CALLCENTER_TEST_FIGURES": "/tmp/f",
        "CALLCENTER_TEST_DIFF_DUMP": "/tmp/d",
        "CALLCENTER_TRACES": "/x",
        "CALLCENTER_HOME": "/srv/cc",
        "CALLCENTER_DEPLOY_ENV": "staging",
    }
    assert config.load(write(tmp_path, ""), environ=others).ami.port == 5038


def test_missing_secret_is_reported_when_required(tmp_path):
    path = write(tmp_path, '[ami]\nhost = "127.0.0.1"\n')
    with pytest.raises(ConfigError, match=r"ami\.secret: missing .*CALLCENTER_AMI_SECRET"):
        config.load(path, require=("ami",), environ={})
    assert config.load(path, require=("ami",), environ={"CALLCENTER_AMI_SECRET": "s3"}).ami.secret.get_secret_value() == "s3"


def test_several_problems_come_in_one_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, '[ami]\nport = "x"\nbogus = 1\n'), require=("ami",), environ={})
    assert "ami.port" in str(info.value) and "ami.bogus" in str(info.value)


def test_a_config_path_that_is_a_folder_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file: Is a directory"):
        config.load(tmp_path, environ={})


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml", environ={})


def test_command_exits_non_zero_with_the_message(tmp_path):
    path = write(tmp_path, '[ami]\nport = "x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "--config", str(path), "monitor", "--once"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "ami.port: Input should be a valid integer" in result.stderr


def test_the_strategies_the_config_accepts_are_the_acds_policies():
    from acd.policies import POLICIES

    assert set(config.STRATEGIES) == set(POLICIES)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[database]\nurl = "sqlite:///"\n', "database.url: Value error, 'sqlite:///' names no file"),
        ('[database]\nurl = "sqlite://"\n', "database.url: Value error, 'sqlite://' names no file"),
        ('[database]\nurl = "sqlite:///:memory:"\n', "database.url: Value error, 'sqlite:///:memory:' names no file"),
        ("[ami]\nping_interval = inf\n", "ami.ping_interval: Input should be a finite number"),
        ("[ami]\nconnect_timeout = nan\n", "ami.connect_timeout: Input should be a finite number"),
        ("[panel]\nservice_level_s = {support = inf}\n", "panel.service_level_s.support: Input should be a finite number"),
        ("[ami]\nreconnect_min = 60.0\nreconnect_max = 1.0\n", "ami.reconnect_max: Value error, 1 is less than reconnect_min (60)"),
        ('[panel]\norigins = ["*"]\n', "panel.origins: Value error, '*': an origin is scheme://host[:port]"),
        ('[panel]\norigins = ["https://panel.example.com/"]\n', "panel.origins: Value error, 'https://panel.example.com/': an origin"),
        ('[panel]\ncrm_url = "crm.example/api?phone={number}"\n', "panel.crm_url: Value error, 'crm.example/api?phone={number}': a URL"),
        ('[panel]\ncrm_url = "https://crm.example/api"\n', "panel.crm_url: Value error, 'https://crm.example/api': put {number}"),
        ('[panel]\nmessage_queue = "ftp://x"\n', "panel.message_queue: Value error, 'ftp://x': a URL starting redis:// or rediss://"),
        ('[panel]\ntrusted_proxies = ["not-an-ip"]\n', "panel.trusted_proxies: Value error, 'not-an-ip': an IP address"),
        ('[panel]\nhost = "999.1.1.1"\n', "panel.host: Value error, '999.1.1.1' is neither an IP address nor a host name"),
        ('[ami]\nhost = "pbx .example"\n', "ami.host: Value error, 'pbx .example' is neither an IP address nor a host name"),
        ('[[acd.agents]]\nname = ""\ninterface = "PJSIP/1"\nqueues = []\n', "acd.agents.0.name: Value error, agent name ''"),
        ('[[acd.agents]]\nname = "a|b"\ninterface = "PJSIP/1"\nqueues = []\n', "acd.agents.0.name: Value error, agent name 'a|b'"),
        (
            '[acd.queues.support]\n[[acd.agents]]\nname = "ana"\ninterface = "PJSIP/1"\nqueues = ["support", "nosuch"]\n',
            "acd.agents: Value error, agent 'ana': queue(s) 'nosuch' not in [acd.queues] (support)",
        ),
        ('[recordings]\nencrypt = true\nkey = "notbase64!!"\n', "recordings.key: Value error, not base64"),
    ],
)
def test_values_that_would_fail_far_from_the_file_are_refused_on_load(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), environ={})
    assert expected in str(info.value)
    assert f"{tmp_path / 'callcenter.toml'}: " in str(info.value)


def test_hosts_origins_proxies_and_urls_written_as_documented_still_load(tmp_path):
    text = (
        '[ami]\nhost = "pbx-1.example.com"\n[acd]\n[[acd.agents]]\nname = "ana.souza@sp"\ninterface = "PJSIP/1"\nqueues = ["any"]\n'
        '[panel]\nhost = "0.0.0.0"\norigins = ["https://panel.example.com", "http://10.0.0.5:8080"]\n'
        'trusted_proxies = ["127.0.0.1", "::1"]\nmessage_queue = "unix:///run/redis.sock"\n'
        'crm_url = "https://crm.example.com/api/customers?phone={number}"\n'
    )
    settings = config.load(write(tmp_path, text), environ={"CALLCENTER_AMI_HOST": "localhost"})
    assert settings.ami.host == "localhost" and settings.panel.trusted_proxies == ["127.0.0.1", "::1"]
    assert settings.acd.agents[0].queues == ["any"], "with no [acd.queues], app_queue's own queues are not known here"


def test_a_bom_is_read_and_a_byte_that_is_not_utf8_is_named_by_line_and_column(tmp_path):
    path = tmp_path / "callcenter.toml"
    path.write_bytes(b"\xef\xbb\xbf[ami]\nport = 5039\n")
    assert config.load(path, environ={}).ami.port == 5039, "as Windows' Notepad saves it"
    path.write_bytes(b'[ami]\nhost = "h\xff"\n')
    with pytest.raises(ConfigError, match=r"callcenter.toml: line 2, column 10: not UTF-8 \(save the file as UTF-8\)"):
        config.load(path, environ={})


def test_lists_and_tables_are_set_from_the_environment_as_json(tmp_path):
    environ = {
        "CALLCENTER_PANEL_ORIGINS": '["https://panel.example.com"]',
        "CALLCENTER_PANEL_SERVICE_LEVEL_S": '{"support": 30}',
        "CALLCENTER_ACD_QUEUES": '{"support": {"strategy": "round_robin"}}',
    }
    settings = config.load(write(tmp_path, ""), environ=environ)
    assert settings.panel.origins == ["https://panel.example.com"] and settings.panel.service_level_s == {"support": 30.0}
    assert settings.acd.queues["support"].strategy == "round_robin"
    for raw, expected in (
        ("https://x", r"CALLCENTER_PANEL_ORIGINS: not JSON \(.*\); a list or table is set as JSON"),
        ('["*"]', r"CALLCENTER_PANEL_ORIGINS: panel.origins: Value error, '\*'"),
    ):
        with pytest.raises(ConfigError, match=expected):
            config.load(write(tmp_path, ""), environ={"CALLCENTER_PANEL_ORIGINS": raw})
    with pytest.raises(ConfigError, match="CALLCENTER_AMI_PING_INTERVAL: ami.ping_interval: Input should be a finite number"):
        config.load(write(tmp_path, ""), environ={"CALLCENTER_AMI_PING_INTERVAL": "inf"})
