"""Name, label and annotation rules speak Kubernetes' exact words."""

from __future__ import annotations

import pytest

from minik.api import names

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize("name", ["web", "web-1", "a.b.c", "0abc", "x" * 253])
def test_dns_subdomain_accepts_lowercase_dotted_names(name: str) -> None:
    assert names.is_dns1123_subdomain(name) == []


def test_dns_subdomain_error_is_kubernetes_message() -> None:
    assert names.is_dns1123_subdomain("Web_1") == [SUBDOMAIN_MESSAGE]


def test_dns_subdomain_longer_than_253_reports_length() -> None:
    assert names.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


def test_dns_label_error_is_kubernetes_message() -> None:
    assert names.is_dns1123_label("-web") == [LABEL_MESSAGE]


def test_dns_label_with_dots_says_so() -> None:
    assert names.is_dns1123_label("a.b") == ["must not contain dots"]


def test_dns_label_longer_than_63_reports_length() -> None:
    assert names.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_rfc1035_label_must_start_with_a_letter() -> None:
    assert names.is_dns1035_label("web") == []
    (message,) = names.is_dns1035_label("1web")
    assert message.startswith("a DNS-1035 label must consist of lower case alphanumeric")
    assert message.endswith("(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                            "'[a-z]([-a-z0-9]*[a-z0-9])?')")


def test_service_namespace_and_statefulset_names_are_labels_others_subdomains() -> None:
    assert names.name_rule("Service")("1web", False)
    assert names.name_rule("Namespace")("a.b", False) == ["must not contain dots"]
    assert names.name_rule("StatefulSet")("a.b", False) == ["must not contain dots"]
    assert names.name_rule("Pod")("a.b", False) == []
    assert names.name_rule("ConfigMap")("a.b", False) == []


def test_generate_name_may_end_with_a_dash() -> None:
    assert names.name_is_dns_subdomain("web-", True) == []
    assert names.name_is_dns_subdomain("web-", False) == [SUBDOMAIN_MESSAGE]


def test_qualified_name_checks_prefix_and_name_parts() -> None:
    assert names.is_qualified_name("app.kubernetes.io/name") == []
    assert names.is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert names.is_qualified_name("Example.com/name")[0].startswith(
        "prefix part a lowercase RFC 1123 subdomain"
    )
    assert names.is_qualified_name("example.com/")[0] == "name part must be non-empty"
    assert names.is_qualified_name("n" * 64)[0] == "name part must be no more than 63 characters"
    assert names.is_qualified_name("a/b/c")[0].startswith("a valid label key must consist of")


def test_label_value_may_be_empty_but_not_malformed_or_long() -> None:
    assert names.is_label_value("") == []
    assert names.is_label_value("v1.2_x") == []
    (message,) = names.is_label_value("-bad")
    assert message.startswith("a valid label must be an empty string or consist of")
    assert names.is_label_value("v" * 64) == ["must be no more than 63 characters"]


def test_label_errors_name_the_offending_key_or_value() -> None:
    found = names.label_errors({"good": "ok", "bad key": "ok", "k": "bad value"})
    assert [bad for bad, _ in found] == ["bad key", "bad value"]


def test_annotation_keys_are_checked_case_insensitively() -> None:
    assert names.annotation_errors({"Example.COM/Key": "anything at all"}) == []
    assert [k for k, _ in names.annotation_errors({"bad key": "x"})] == ["bad key"]


def test_annotations_size_counts_keys_and_values() -> None:
    assert names.annotations_size({"ab": "cde", "f": ""}) == 6
    big = {"k": "x" * names.TOTAL_ANNOTATION_SIZE_LIMIT}
    assert names.annotations_size(big) > names.TOTAL_ANNOTATION_SIZE_LIMIT


def test_config_map_keys_allow_dots_but_not_parent_directories() -> None:
    assert names.is_config_map_key("app.properties") == []
    assert names.is_config_map_key("..data") == ["must not start with '..'"]
    assert names.is_config_map_key("a/b")[0].startswith("a valid config key must consist of")


def test_port_names_are_iana_service_names() -> None:
    assert names.is_valid_port_name("http") == []
    assert "must contain at least one letter (a-z)" in names.is_valid_port_name("8080")
    assert "must not contain consecutive hyphens" in names.is_valid_port_name("a--b")
    too_long = names.is_valid_port_name("a-very-long-port-name")
    assert too_long == ["must be no more than 15 characters"]


def test_env_var_names_follow_the_relaxed_rule() -> None:
    assert names.is_env_var_name("1_STARTS.WITH-digit") == []
    assert names.is_env_var_name("A=B")[0].endswith("printable ASCII characters other than '='")
    assert names.is_env_var_name("") == ["environment variable name must be non-empty"]
