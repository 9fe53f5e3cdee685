"""Label and field selectors behave as the Kubernetes API server's do."""

from __future__ import annotations

import pytest

from minik.api.errors import ApiError
from minik.api.selectors.fields import FieldSelector
from minik.api.selectors.labels import LabelSelector

WEB = {"app": "web", "tier": "frontend"}


def bad_request(call, *args, **kwargs) -> str:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app=db", WEB, False),
        ("app==web", WEB, True),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),
        ("tier in (frontend,backend)", WEB, True),
        ("tier in (backend)", WEB, False),
        ("missing in (x)", WEB, False),
        ("tier notin (backend)", WEB, True),
        ("tier notin (frontend)", WEB, False),
        ("missing notin (x)", WEB, True),
        ("app", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!app", WEB, False),
        ("app=web,tier=frontend", WEB, True),
        ("app=web,tier=backend", WEB, False),
        ("  app = web ,  tier  ", WEB, True),
    ],
)
def test_each_label_operator_matches_like_kubernetes(text, labels, expected):
    assert LabelSelector.parse(text).matches(labels) is expected


def test_numeric_comparisons_need_an_integer_label():
    assert LabelSelector.parse("replicas>2").matches({"replicas": "3"})
    assert not LabelSelector.parse("replicas<2").matches({"replicas": "3"})
    assert not LabelSelector.parse("replicas>2").matches({"replicas": "many"})


def test_in_and_notin_are_plain_values_after_an_operator():
    assert LabelSelector.parse("x in (in,notin)").matches({"x": "notin"})
    assert LabelSelector.parse("x=in").matches({"x": "in"})


def test_an_empty_value_is_allowed():
    selector = LabelSelector.parse("x=,y in (,a)")
    assert selector.matches({"x": "", "y": ""})
    assert str(selector) == "x=,y in (,a)"


def test_an_empty_selector_matches_everything_including_no_labels():
    selector = LabelSelector.parse("")
    assert selector.empty
    assert selector.matches(None)
    assert str(selector) == ""


def test_the_text_form_sorts_keys_and_set_values():
    selector = LabelSelector.parse("tier in (b,a), app=web, !legacy, env notin (prod)")
    assert str(selector) == "app=web,env notin (prod),!legacy,tier in (a,b)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' "
                "operators, the value must be an integer"),
    ],
)
def test_malformed_label_selectors_are_bad_requests_with_kubernetes_wording(text, message):
    assert bad_request(LabelSelector.parse, text) == message


def test_an_invalid_label_key_is_named_in_the_error():
    message = bad_request(LabelSelector.parse, "-bad-key=x")
    assert message.startswith('unable to parse requirement: <nil>: Invalid value: "-bad-key": ')
    assert "name part must consist of alphanumeric characters" in message


def test_a_key_with_two_slashes_is_not_a_qualified_name():
    assert "a qualified name must consist" in bad_request(LabelSelector.parse, "a/b/c")


def test_an_overlong_label_value_is_rejected():
    message = bad_request(LabelSelector.parse, f"app={'v' * 64}")
    assert "values[0][app]" in message
    assert "must be no more than 63 characters" in message


def test_a_prefixed_key_is_accepted():
    selector = LabelSelector.parse("app.kubernetes.io/name=web")
    assert selector.matches({"app.kubernetes.io/name": "web"})


def test_a_nil_spec_selects_nothing_and_is_not_empty():
    selector = LabelSelector.from_spec(None)
    assert not selector.matches({})
    assert not selector.matches(WEB)
    assert not selector.empty
    assert str(selector) == ""


def test_an_empty_spec_selects_everything():
    selector = LabelSelector.from_spec({})
    assert selector.matches({})
    assert selector.matches(WEB)
    assert selector.empty


def test_a_spec_combines_match_labels_and_expressions():
    selector = LabelSelector.from_spec({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "app", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    })
    assert selector.matches(WEB)
    assert not selector.matches({**WEB, "legacy": "yes"})
    assert not selector.matches({"app": "web"})
    assert str(selector) == "app=web,app,env notin (prod),!legacy,tier in (edge,frontend)"


def test_a_plain_label_map_is_not_a_label_selector():
    assert bad_request(LabelSelector.from_spec, {"app": "web"}) == (
        'unknown field "app" in a label selector: it has matchLabels and matchExpressions')
    assert "is an object" in bad_request(LabelSelector.from_spec, "app=web")


def test_a_spec_with_an_unknown_operator_names_it():
    spec = {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}
    assert bad_request(LabelSelector.from_spec, spec) == (
        '"Equals" is not a valid label selector operator'
    )


def test_a_spec_with_in_and_no_values_is_invalid():
    spec = {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}
    assert bad_request(LabelSelector.from_spec, spec) == (
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, "
        "values set can't be empty"
    )


def test_a_spec_with_exists_and_values_is_invalid():
    spec = {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}
    assert "values set must be empty" in bad_request(LabelSelector.from_spec, spec)


POD = {
    "metadata": {"name": "p1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always"},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]},
}


def test_field_selectors_match_equal_and_double_equal_terms():
    assert FieldSelector.parse("metadata.name=p1", kind="Pod").matches(POD)
    assert FieldSelector.parse("metadata.name==p1", kind="Pod").matches(POD)
    assert not FieldSelector.parse("metadata.name=p2", kind="Pod").matches(POD)


def test_field_selectors_combine_not_equal_terms_as_describe_node_does():
    selector = FieldSelector.parse(
        "spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed", kind="Pod"
    )
    assert selector.matches(POD)
    assert not selector.matches({**POD, "status": {"phase": "Failed"}})
    assert not selector.matches({**POD, "spec": {"nodeName": "node-2"}})


def test_a_missing_field_compares_as_the_empty_string():
    unscheduled = {"metadata": {"name": "p2"}}
    assert FieldSelector.parse("spec.nodeName=", kind="Pod").matches(unscheduled)
    assert FieldSelector.parse("spec.nodeName!=node-1", kind="Pod").matches(unscheduled)


def test_pod_ip_and_host_network_are_selectable():
    assert FieldSelector.parse("status.podIP=10.0.0.5", kind="Pod").matches(POD)
    assert FieldSelector.parse("spec.hostNetwork=false", kind="Pod").matches(POD)


def test_every_kind_selects_on_name_and_namespace():
    node = {"metadata": {"name": "node-1"}}
    assert FieldSelector.parse("metadata.name=node-1", kind="Node").matches(node)
    assert FieldSelector.parse("metadata.namespace=", kind="Node").matches(node)
    assert FieldSelector.parse("metadata.namespace=default", kind="Widget").matches(POD)


def test_event_fields_are_selectable():
    event = {
        "metadata": {"name": "p1.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default", "uid": "u1"},
        "reason": "Pulled", "type": "Normal", "source": {"component": "kubelet"},
    }
    selector = FieldSelector.parse(
        "involvedObject.kind=Pod,involvedObject.name=p1,involvedObject.uid=u1,"
        "type=Normal,reason=Pulled,source=kubelet",
        kind="Event",
    )
    assert selector.matches(event)
    assert not FieldSelector.parse("type!=Normal", kind="Event").matches(event)


def test_kind_specific_fields_cover_secrets_namespaces_nodes_and_jobs():
    assert FieldSelector.parse("type=Opaque", kind="Secret").matches({"type": "Opaque"})
    assert FieldSelector.parse("status.phase=Active", kind="Namespace").matches(
        {"status": {"phase": "Active"}}
    )
    assert FieldSelector.parse("spec.unschedulable=true", kind="Node").matches(
        {"spec": {"unschedulable": True}}
    )
    assert FieldSelector.parse("status.successful=1", kind="Job").matches(
        {"status": {"succeeded": 1}}
    )


def test_an_unsupported_field_is_a_bad_request():
    assert bad_request(FieldSelector.parse, "spec.image=nginx", kind="Pod") == (
        "field label not supported: spec.image"
    )
    assert bad_request(FieldSelector.parse, "spec.nodeName=n1", kind="Service") == (
        "field label not supported: spec.nodeName"
    )


def test_a_term_without_an_operator_is_a_bad_request():
    assert bad_request(FieldSelector.parse, "metadata.name=p1,oops", kind="Pod") == (
        "invalid selector: 'metadata.name=p1,oops'; can't understand 'oops'"
    )


def test_escaped_commas_and_equals_belong_to_the_value():
    selector = FieldSelector.parse(r"metadata.name=a\,b\=c", kind="Pod")
    assert [term.value for term in selector.terms] == ["a,b=c"]
    assert str(selector) == r"metadata.name=a\,b\=c"


def test_an_unknown_escape_is_a_bad_request():
    assert bad_request(FieldSelector.parse, r"metadata.name=a\b", kind="Pod") == (
        r"invalid field selector: invalid escape sequence: \b"
    )


def test_an_empty_field_selector_matches_everything():
    selector = FieldSelector.parse("", kind="Pod")
    assert selector.empty
    assert selector.matches({})
