"""Any file a user may point `agent config validate` at: exit 0, or exit 2 with one line per problem naming the file.

A few hundred generated files in the default run; bench/config_fuzz.py runs tens of thousands.
"""

from hypothesis import HealthCheck, given, settings

from tests.configs import config_files, run_validate


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(config_files())
def test_any_config_file_is_valid_or_one_line_per_problem(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    code, stderr = run_validate(str(path))
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    assert code in (0, 2), (code, stderr[-2000:])
    if code == 2:
        assert stderr and all(line.startswith(f"{path}: ") for line in stderr.splitlines()), stderr[-2000:]
