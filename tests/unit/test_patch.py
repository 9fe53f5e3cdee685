"""Behaviour of the three PATCH formats and of the client-side apply three-way patch."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from minik.api.patch.json_patch import apply_json_patch, apply_merge_patch
from minik.api.patch.json_values import PatchError
from minik.api.patch.merge_keys import PRIMITIVE_SET, merge_key_for
from minik.api.patch.strategic import apply_strategic_merge_patch
from minik.api.patch.three_way import create_strategic_merge_patch

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
POD_SPEC = ("spec", "template", "spec")
CONTAINER = (*POD_SPEC, "containers")


def smp(target: dict, patch: dict, kind: str = "Deployment") -> dict:
    return apply_strategic_merge_patch(target, patch, kind=kind)


def pod_template(*containers: dict, **spec: Any) -> dict:
    return {"spec": {"template": {"spec": {"containers": list(containers), **spec}}}}


def containers_of(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


# ------------------------------------------------------------ RFC 7386


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_every_example_in_rfc_7386_appendix_a(
    target: Any, patch: Any, result: Any
) -> None:
    assert apply_merge_patch(target, patch) == result


def test_merge_patch_follows_the_rfc_7386_section_3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_removes_a_label_as_kubectl_label_does() -> None:
    target = {"metadata": {"labels": {"app": "web", "tier": "fe"}}}
    result = apply_merge_patch(target, {"metadata": {"labels": {"tier": None}}})
    assert result == {"metadata": {"labels": {"app": "web"}}}


def test_merge_patch_never_mutates_its_inputs_nor_shares_structure_with_them() -> None:
    target = {"a": {"b": [1]}, "keep": {"x": 1}}
    patch = {"a": {"c": {"d": 1}}}
    before = copy.deepcopy((target, patch))
    result = apply_merge_patch(target, patch)
    result["keep"]["x"] = 2
    result["a"]["c"]["d"] = 2
    assert (target, patch) == before


# ------------------------------------------------------------ RFC 6902


@pytest.mark.parametrize(
    ("document", "operations", "result"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
         {"baz": "qux", "foo": "bar"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
         {"foo": ["bar", "qux", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
         {"foo": ["bar", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
         {"baz": "boo", "foo": "bar"}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]},
         [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"baz": "qux", "foo": ["a", 2, "c"]},
         [{"op": "test", "path": "/baz", "value": "qux"},
          {"op": "test", "path": "/foo/1", "value": 2}],
         {"baz": "qux", "foo": ["a", 2, "c"]}),
        ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
         {"foo": "bar", "child": {"grandchild": {}}}),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
         {"foo": "bar", "baz": "qux"}),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
         {"foo": ["bar", ["abc", "def"]]}),
    ],
    ids=["A.1", "A.2", "A.3", "A.4", "A.5", "A.6", "A.7", "A.8", "A.10", "A.11", "A.14", "A.16"],
)
def test_json_patch_follows_the_rfc_6902_appendix_a_examples(
    document: Any, operations: list, result: Any
) -> None:
    assert apply_json_patch(document, operations) == result


@pytest.mark.parametrize(
    ("document", "operation", "message"),
    [
        ({"baz": "qux"}, {"op": "test", "path": "/baz", "value": "bar"}, "test failed"),
        ({"foo": "bar"}, {"op": "add", "path": "/baz/bat", "value": "qux"}, "path not found"),
        ({"/": 9, "~1": 10}, {"op": "test", "path": "/~01", "value": "10"}, "test failed"),
    ],
    ids=["A.9 test fails", "A.12 add to a missing parent", "A.15 string is not number"],
)
def test_json_patch_rejects_the_rfc_6902_error_examples(
    document: Any, operation: dict, message: str
) -> None:
    with pytest.raises(PatchError, match=message):
        apply_json_patch(document, [operation])


def test_json_patch_error_names_the_operation_index_op_and_path() -> None:
    operations = [
        {"op": "add", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/foo", "value": 1},
    ]
    with pytest.raises(PatchError) as caught:
        apply_json_patch({"spec": {}}, operations)
    assert str(caught.value) == "json patch op 1 (replace /spec/foo): path not found"


def test_json_patch_test_op_tells_true_from_one() -> None:
    with pytest.raises(PatchError, match="test failed"):
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])


def test_json_patch_copy_duplicates_a_value_without_aliasing_it() -> None:
    result = apply_json_patch(
        {"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}]
    )
    result["c"]["b"].append(2)
    assert result == {"a": {"b": [1]}, "c": {"b": [1, 2]}}


def test_json_patch_unescapes_tilde_and_slash_in_keys() -> None:
    document = {"metadata": {"annotations": {}}}
    operations = [
        {"op": "add", "path": "/metadata/annotations/example.com~1a~0b", "value": "x"},
    ]
    result = apply_json_patch(document, operations)
    assert result == {"metadata": {"annotations": {"example.com/a~b": "x"}}}


def test_json_patch_replaces_the_whole_document_at_the_empty_path() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_json_patch_replaces_the_template_as_rollout_undo_does() -> None:
    live = {"metadata": {"annotations": {"a": "1"}}, "spec": {"template": {"spec": {}}}}
    template = {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}
    operations = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": {"b": "2"}},
    ]
    result = apply_json_patch(live, operations)
    assert result == {"metadata": {"annotations": {"b": "2"}}, "spec": {"template": template}}


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "remove", "path": "/list/2"}, "path not found"),
        ({"op": "replace", "path": "/list/-", "value": 0}, "invalid array index"),
        ({"op": "add", "path": "/list/01", "value": 0}, "invalid array index"),
        ({"op": "add", "path": "/list/3", "value": 0}, "path not found"),
        ({"op": "add", "path": "list", "value": 0}, "invalid JSON pointer"),
        ({"op": "add", "path": "/a~2", "value": 0}, "invalid JSON pointer"),
        ({"op": "add", "path": "/x"}, "missing 'value'"),
        ({"op": "move", "path": "/x"}, "missing 'from'"),
        ({"op": "move", "from": "/obj", "path": "/obj/inner"}, "its own children"),
        ({"op": "remove", "path": ""}, "whole document"),
        ({"op": "frobnicate", "path": "/x"}, "unknown operation"),
        ({"op": "add", "path": 3, "value": 0}, "'path' must be a string"),
    ],
)
def test_json_patch_rejects_bad_paths_and_malformed_operations(
    operation: dict, message: str
) -> None:
    with pytest.raises(PatchError, match=message):
        apply_json_patch({"list": [1, 2], "obj": {}}, [operation])


def test_json_patch_is_atomic_and_leaves_the_target_untouched_on_failure() -> None:
    target = {"a": [1]}
    operations = [
        {"op": "add", "path": "/a/-", "value": 2},
        {"op": "test", "path": "/a/0", "value": 9},
    ]
    with pytest.raises(PatchError):
        apply_json_patch(target, operations)
    assert target == {"a": [1]}


def test_json_patch_body_must_be_an_array() -> None:
    with pytest.raises(PatchError, match="array"):
        apply_json_patch({}, {"op": "add"})


# ------------------------------------------------------------ merge keys


@pytest.mark.parametrize(
    ("kind", "path", "list_field", "key"),
    [
        ("Deployment", POD_SPEC, "containers", "name"),
        ("Pod", ("spec",), "initContainers", "name"),
        ("Pod", ("spec",), "ephemeralContainers", "name"),
        ("Deployment", CONTAINER, "env", "name"),
        ("Deployment", CONTAINER, "ports", "containerPort"),
        ("Service", ("spec",), "ports", "port"),
        ("Pod", ("spec", "containers"), "volumeMounts", "mountPath"),
        ("Pod", ("spec", "initContainers"), "volumeDevices", "devicePath"),
        ("StatefulSet", POD_SPEC, "volumes", "name"),
        ("Pod", ("spec",), "imagePullSecrets", "name"),
        ("Pod", ("spec",), "hostAliases", "ip"),
        ("Pod", ("spec",), "topologySpreadConstraints", "topologyKey"),
        ("Pod", ("spec",), "resourceClaims", "name"),
        ("Pod", ("spec",), "schedulingGates", "name"),
        ("Pod", ("status",), "conditions", "type"),
        ("Deployment", ("status",), "conditions", "type"),
        ("Node", ("status",), "addresses", "type"),
        ("ReplicaSet", ("metadata",), "ownerReferences", "uid"),
        ("ConfigMap", ("metadata",), "finalizers", PRIMITIVE_SET),
        ("Deployment", CONTAINER, "args", None),
        ("Pod", ("spec",), "tolerations", None),
        ("Deployment", CONTAINER, "envFrom", None),
        ("Pod", ("spec",), "ports", None),
        ("Service", ("status", "loadBalancer"), "ports", None),
        ("Pod", ("status",), "addresses", None),
    ],
)
def test_merge_key_for_knows_the_kubernetes_list_strategies(
    kind: str, path: tuple[str, ...], list_field: str, key: str | None
) -> None:
    assert merge_key_for(path, list_field, kind=kind) == key


# ------------------------------------------------------------ strategic merge: lists


def test_setting_the_image_of_one_container_keeps_the_other_container() -> None:
    live = pod_template(
        {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "envoy:1"},
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "sidecar", "image": "envoy:2"}],
                }
            }
        }
    }
    assert containers_of(smp(live, patch)) == [
        {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "envoy:2"},
    ]


def test_adding_an_env_var_keeps_the_existing_ones() -> None:
    live = pod_template({"name": "app", "env": [{"name": "A", "value": "1"}]})
    patch = pod_template({"name": "app", "env": [{"name": "B", "value": "2"}]})
    env = containers_of(smp(live, patch))[0]["env"]
    assert sorted(env, key=lambda e: e["name"]) == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]


def test_a_patch_element_merges_into_the_element_with_the_same_key() -> None:
    live = pod_template({"name": "app", "env": [{"name": "A", "valueFrom": {"x": 1}}]})
    patch = pod_template({"name": "app", "env": [{"name": "A", "value": "1", "valueFrom": None}]})
    assert containers_of(smp(live, patch))[0]["env"] == [{"name": "A", "value": "1"}]


def test_patch_delete_inside_a_list_element_removes_that_port() -> None:
    live = pod_template(
        {"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
    )
    patch = pod_template({"name": "app", "ports": [{"containerPort": 80, "$patch": "delete"}]})
    assert containers_of(smp(live, patch))[0]["ports"] == [{"containerPort": 443}]


def test_null_removes_the_whole_ports_list_of_a_container() -> None:
    live = pod_template({"name": "app", "image": "x", "ports": [{"containerPort": 80}]})
    patch = pod_template({"name": "app", "ports": None})
    assert containers_of(smp(live, patch)) == [{"name": "app", "image": "x"}]


def test_service_ports_merge_by_port_number() -> None:
    live = {"spec": {"clusterIP": "10.0.0.7", "ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    result = smp(live, patch, kind="Service")
    assert result["spec"]["clusterIP"] == "10.0.0.7"
    assert sorted(result["spec"]["ports"], key=lambda p: p["port"]) == [
        {"name": "http", "port": 80, "targetPort": 9090, "nodePort": 30080},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]


def test_conditions_merge_by_type() -> None:
    live = {"status": {"conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "PodScheduled", "status": "True"},
    ]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    conditions = smp(live, patch, kind="Pod")["status"]["conditions"]
    assert {c["type"]: c["status"] for c in conditions} == {"Ready": "True", "PodScheduled": "True"}


def test_finalizers_merge_as_a_set_instead_of_being_replaced() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    result = smp(live, {"metadata": {"finalizers": ["b", "c"]}}, kind="Job")
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b", "c"]


def test_atomic_lists_are_replaced_wholesale() -> None:
    live = pod_template({"name": "app", "args": ["a", "b"]}, tolerations=[{"key": "x"}])
    patch = pod_template({"name": "app", "args": ["c"]}, tolerations=[{"key": "y"}])
    result = smp(live, patch)
    assert containers_of(result)[0]["args"] == ["c"]
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "y"}]


def test_a_keyed_list_patch_element_without_its_merge_key_is_rejected() -> None:
    live = pod_template({"name": "app"})
    with pytest.raises(PatchError, match="merge key 'name'"):
        smp(live, pod_template({"image": "x"}))


def test_an_element_that_is_not_an_object_in_a_keyed_list_is_rejected() -> None:
    with pytest.raises(PatchError, match="list of objects"):
        smp(pod_template({"name": "app"}), pod_template("app"))


def test_a_new_container_is_added_in_the_order_kubectl_asks_for() -> None:
    live = pod_template({"name": "a"}, {"name": "b"})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
        "containers": [{"name": "c", "image": "c:1"}],
    }}}}
    assert [c["name"] for c in containers_of(smp(live, patch))] == ["a", "c", "b"]


def test_without_an_order_hint_patch_items_keep_patch_order_and_server_items_theirs() -> None:
    live = pod_template({"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"})
    patch = pod_template({"name": "3", "image": "c"}, {"name": "1", "image": "a"})
    assert containers_of(smp(live, patch)) == [
        {"name": "2", "image": "b"},
        {"name": "3", "image": "c"},
        {"name": "1", "image": "a"},
    ]


# ------------------------------------------------------------ strategic merge: directives


def test_null_deletes_a_key() -> None:
    assert smp({"spec": {"paused": True, "replicas": 1}}, {"spec": {"paused": None}}) == {
        "spec": {"replicas": 1}
    }


def test_patch_replace_on_a_map_replaces_it_and_drops_the_directive() -> None:
    live = {"spec": {"template": {"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}}}}
    patch = {"spec": {"template": {"$patch": "replace", "spec": {"y": 2}}}}
    assert smp(live, patch, kind="StatefulSet") == {"spec": {"template": {"spec": {"y": 2}}}}


def test_patch_delete_on_a_map_deletes_the_map() -> None:
    live = {"spec": {"strategy": {"type": "Recreate"}, "replicas": 1}}
    assert smp(live, {"spec": {"strategy": {"$patch": "delete"}}}) == {"spec": {"replicas": 1}}


def test_retain_keys_keeps_only_the_listed_keys_after_merging() -> None:
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(live, patch) == {"spec": {"strategy": {"type": "Recreate"}}}


def test_retain_keys_rejects_a_patch_field_it_does_not_list() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}
    with pytest.raises(PatchError, match="not in \\$retainKeys"):
        smp({"spec": {}}, patch)


def test_retain_keys_clears_the_old_source_of_a_volume() -> None:
    live = pod_template(volumes=[{"name": "data", "hostPath": {"path": "/x", "type": ""}}])
    patch = pod_template(volumes=[
        {"name": "data", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]},
    ])
    del patch["spec"]["template"]["spec"]["containers"]
    volumes = smp(live, patch)["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "data", "emptyDir": {}}]


def test_set_element_order_alone_reorders_a_list() -> None:
    live = pod_template({"name": "a"}, {"name": "b"})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
    }}}}
    assert [c["name"] for c in containers_of(smp(live, patch))] == ["b", "a"]


def test_set_element_order_keeps_server_only_items_in_their_server_position() -> None:
    live = {"metadata": {"finalizers": ["1", "2", "3", "4"]}}
    patch = {"metadata": {
        "$setElementOrder/finalizers": ["1", "2"],
        "$deleteFromPrimitiveList/finalizers": ["3"],
    }}
    assert smp(live, patch)["metadata"]["finalizers"] == ["1", "2", "4"]


def test_set_element_order_must_agree_with_the_patch_list() -> None:
    live = pod_template({"name": "a"}, {"name": "b"})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}],
    }}}}
    with pytest.raises(PatchError, match="setElementOrder"):
        smp(live, patch)


def test_delete_from_primitive_list_removes_only_those_values() -> None:
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "z"]}}
    assert smp(live, patch) == {"metadata": {"finalizers": ["a", "c"]}}


def test_delete_from_primitive_list_never_creates_the_list() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert smp({"metadata": {}}, patch) == {"metadata": {}}


def test_patch_replace_as_a_list_element_replaces_the_whole_list() -> None:
    live = pod_template({"name": "a"}, {"name": "b"})
    patch = pod_template({"$patch": "replace"}, {"name": "c"})
    assert containers_of(smp(live, patch)) == [{"name": "c"}]


def test_patch_replace_alone_empties_a_keyed_list() -> None:
    live = pod_template({"name": "a"}, {"name": "b"})
    assert containers_of(smp(live, pod_template({"$patch": "replace"}))) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"spec": {"$frobnicate": 1}}, "unknown directive '\\$frobnicate'"),
        ({"spec": {"$patch": "merge"}}, "unknown \\$patch 'merge'"),
        (pod_template({"name": "a", "$patch": "merge"}), "unknown \\$patch 'merge'"),
        ({"spec": {"$setElementOrder/containers": {"name": "a"}}}, "must be a list"),
        ({"spec": {"$setElementOrder": []}}, "unknown directive"),
    ],
)
def test_unknown_or_malformed_directives_are_rejected(patch: dict, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        smp(pod_template({"name": "a"}), patch)


def test_directives_in_a_new_subtree_are_applied_not_stored() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "a", "env": None, "image": "x"}],
    }}}}
    assert smp({}, patch) == pod_template({"name": "a", "image": "x"})


def test_a_full_object_as_the_patch_deep_merges_like_server_side_apply() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "uid": "u1", "labels": {"team": "a"}},
        "spec": {
            "clusterIP": "10.0.0.7",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}],
        },
        "status": {"loadBalancer": {}},
    }
    applied = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 9090}]},
    }
    result = smp(live, applied, kind="Service")
    assert result["metadata"] == {"name": "web", "uid": "u1", "labels": {"team": "a", "app": "web"}}
    assert result["spec"]["clusterIP"] == "10.0.0.7"
    assert result["spec"]["ports"] == [
        {"port": 80, "targetPort": 9090, "protocol": "TCP", "nodePort": 30080}
    ]
    assert result["status"] == {"loadBalancer": {}}


def test_patch_delete_at_the_root_empties_the_object() -> None:
    assert smp({"a": 1}, {"$patch": "delete"}) == {}


def test_strategic_merge_never_mutates_its_inputs() -> None:
    live = pod_template({"name": "a", "env": [{"name": "A", "value": "1"}]})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}],
    }}}}
    before = copy.deepcopy((live, patch))
    result = smp(live, patch)
    containers_of(result)[0]["env"].append({"name": "C"})
    assert (live, patch) == before


def test_strategic_merge_requires_objects() -> None:
    with pytest.raises(PatchError):
        apply_strategic_merge_patch([], {}, kind="Pod")  # type: ignore[arg-type]


# ------------------------------------------------------------ three-way patch


def manifest(replicas: int, image: str, env_value: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": {},
            "labels": {"app": "web"},
            "name": "web",
            "namespace": "default",
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "env": [{"name": "A", "value": env_value}],
                    "image": image,
                    "name": "nginx",
                    "ports": [{"containerPort": 80}],
                }]},
            },
        },
    }


def with_last_applied(config: dict) -> dict:
    """What kubectl apply sends: the manifest annotated with its own compact JSON."""
    annotated = copy.deepcopy(config)
    text = json.dumps(config, separators=(",", ":"), sort_keys=True) + "\n"
    annotated["metadata"]["annotations"] = {LAST_APPLIED: text}
    return annotated


def as_served(obj: dict, **status: Any) -> dict:
    """`obj` as the server stores it: identity, defaults, extra annotations, status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="u-1", resourceVersion="7", generation=1)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    spec = live["spec"]
    spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
    for container in pod["containers"]:
        container.update(imagePullPolicy="IfNotPresent", resources={})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
    live["status"] = {"replicas": spec.get("replicas", 1), **status}
    return live


# Request bodies captured from kubectl 1.32 (kubectl-logs/03-apply-update, 10-set-image).
CAPTURED_APPLY_UPDATE = (
    '{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\\"api'
    'Version\\":\\"apps/v1\\",\\"kind\\":\\"Deployment\\",\\"metadata\\":{\\"annotations\\":{},\\"label'
    's\\":{\\"app\\":\\"web\\"},\\"name\\":\\"web\\",\\"namespace\\":\\"default\\"},\\"spec\\":{\\"replicas'
    '\\":3,\\"selector\\":{\\"matchLabels\\":{\\"app\\":\\"web\\"}},\\"template\\":{\\"metadata\\":{\\"la'
    'bels\\":{\\"app\\":\\"web\\"}},\\"spec\\":{\\"containers\\":[{\\"env\\":[{\\"name\\":\\"A\\",\\"value\\"'
    ':\\"2\\"}],\\"image\\":\\"nginx:1.26\\",\\"name\\":\\"nginx\\",\\"ports\\":[{\\"containerPort\\":80}'
    ']}]}}}}\\n"}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{'
    '"name":"nginx"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"name":"'
    'A","value":"2"}],"image":"nginx:1.26","name":"nginx"}]}}}}'
)
CAPTURED_SET_IMAGE = (
    '{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"contain'
    'ers":[{"image":"nginx:1.27","name":"nginx"}]}}}}'
)


def test_three_way_patch_matches_what_kubectl_sent_for_apply_update() -> None:
    first, second = manifest(2, "nginx:1.25", "1"), manifest(3, "nginx:1.26", "2")
    live = as_served(with_last_applied(first))
    patch = create_strategic_merge_patch(first, with_last_applied(second), live, kind="Deployment")
    assert patch == json.loads(CAPTURED_APPLY_UPDATE)


def test_two_way_patch_matches_what_kubectl_set_image_sent() -> None:
    live = as_served(with_last_applied(manifest(3, "nginx:1.26", "2")))
    changed = copy.deepcopy(live)
    containers_of(changed)[0]["image"] = "nginx:1.27"
    patch = create_strategic_merge_patch(live, changed, live, kind="Deployment")
    assert patch == json.loads(CAPTURED_SET_IMAGE)


def test_applying_an_unchanged_manifest_needs_no_patch() -> None:
    config = manifest(2, "nginx:1.25", "1")
    live = as_served(with_last_applied(config), readyReplicas=2)
    patch = create_strategic_merge_patch(config, with_last_applied(config), live, kind="Deployment")
    assert patch == {}


def test_dropping_a_list_element_sends_a_delete_directive_after_the_changes() -> None:
    two = manifest(1, "app:1", "1")
    containers_of(two).append({"name": "sidecar", "image": "envoy:1"})
    one = manifest(1, "app:2", "1")
    patch = create_strategic_merge_patch(two, one, as_served(two), kind="Deployment")
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "app:2"},
        {"name": "sidecar", "$patch": "delete"},
    ]


def test_dropping_a_finalizer_uses_the_primitive_deletion_list() -> None:
    original = {"metadata": {"name": "x", "finalizers": ["a/one", "a/two"]}}
    modified = {"metadata": {"name": "x", "finalizers": ["a/one"]}}
    current = {"metadata": {"name": "x", "finalizers": ["a/one", "a/two", "server/own"]}}
    patch = create_strategic_merge_patch(original, modified, current, kind="ConfigMap")
    assert patch == {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a/two"],
        "$setElementOrder/finalizers": ["a/one"],
    }}
    result = apply_strategic_merge_patch(current, patch, kind="ConfigMap")
    assert result["metadata"]["finalizers"] == ["a/one", "server/own"]


def test_changing_the_strategy_type_clears_the_defaulted_rolling_update() -> None:
    config = manifest(1, "app:1", "1")
    recreate = copy.deepcopy(config)
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    patch = create_strategic_merge_patch(config, recreate, as_served(config), kind="Deployment")
    assert patch["spec"]["strategy"] == {"type": "Recreate", "$retainKeys": ["type"]}


def test_an_explicit_null_in_the_manifest_is_sent_as_a_deletion() -> None:
    original = {"spec": {"paused": True}}
    modified = {"spec": {"paused": None}}
    current = {"spec": {"paused": True, "replicas": 1}}
    patch = create_strategic_merge_patch(original, modified, current, kind="Deployment")
    assert patch == {"spec": {"paused": None}}


def test_three_way_patch_rejects_a_keyed_element_without_its_key() -> None:
    live = pod_template({"name": "a"})
    with pytest.raises(PatchError, match="merge key"):
        create_strategic_merge_patch(None, pod_template({"image": "x"}), live, kind="Deployment")


MISSING = object()


def dig(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        try:
            obj = obj[step]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return obj


def assert_sets(result: Any, modified: Any, where: str = "") -> None:
    """Every field `modified` sets has that value in `result` (which may hold more)."""
    if isinstance(modified, dict):
        assert isinstance(result, dict), where
        for key, value in modified.items():
            if value is None:
                assert key not in result, f"{where}.{key}"
            else:
                assert key in result, f"{where}.{key}"
                assert_sets(result[key], value, f"{where}.{key}")
    elif isinstance(modified, list):
        assert isinstance(result, list) and len(result) == len(modified), where
        for index, (got, want) in enumerate(zip(result, modified, strict=True)):
            assert_sets(got, want, f"{where}[{index}]")
    else:
        assert result == modified, where


@dataclass
class RoundTrip:
    original: dict | None
    modified: dict
    current: dict
    kind: str = "Deployment"
    kept: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    gone: list[tuple[Any, ...]] = field(default_factory=list)


def _deploy(**changes: Any) -> dict:
    config = manifest(2, "nginx:1.25", "1")
    container = containers_of(config)[0]
    for key, value in changes.items():
        if value is None:
            container.pop(key)
        else:
            container[key] = value
    return config


def _service(ports: list[dict], **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"selector": {"app": "web"}, "ports": ports}}


def _served_service(config: dict, **extra_labels: str) -> dict:
    live = copy.deepcopy(config)
    live["metadata"].update(uid="u-2")
    live["metadata"]["labels"].update(extra_labels)
    live["spec"].update(clusterIP="10.0.0.9", type="ClusterIP")
    for port in live["spec"]["ports"]:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    live["status"] = {"loadBalancer": {}}
    return live


def _add_sidecar(config: dict) -> dict:
    containers_of(config).append({"name": "sidecar", "image": "envoy:1"})
    return config


def _sidecar_first(config: dict) -> dict:
    containers_of(config).reverse()
    return config


def _with_strategy(config: dict, strategy: dict) -> dict:
    config["spec"]["strategy"] = strategy
    return config


def _with_volume(config: dict, volume: dict) -> dict:
    config["spec"]["template"]["spec"]["volumes"] = [volume]
    return config


C0 = (*CONTAINER, 0)

ROUND_TRIPS = {
    "apply update from the captured session": RoundTrip(
        manifest(2, "nginx:1.25", "1"),
        with_last_applied(manifest(3, "nginx:1.26", "2")),
        as_served(with_last_applied(manifest(2, "nginx:1.25", "1"))),
        kept={("status", "replicas"): 2, (*C0, "imagePullPolicy"): "IfNotPresent",
              (*C0, "ports", 0, "protocol"): "TCP"},
    ),
    "drop env and ports from a container": RoundTrip(
        _deploy(),
        _deploy(env=None, ports=None),
        as_served(_deploy()),
        kept={(*C0, "resources"): {}, (*POD_SPEC, "dnsPolicy"): "ClusterFirst"},
        gone=[(*C0, "env"), (*C0, "ports")],
    ),
    "add a sidecar and a second env var": RoundTrip(
        _deploy(),
        _add_sidecar(_deploy(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])),
        as_served(_deploy()),
        kept={(*C0, "imagePullPolicy"): "IfNotPresent"},
    ),
    "remove a container and a port": RoundTrip(
        _add_sidecar(_deploy(ports=[{"containerPort": 80}, {"containerPort": 443}])),
        _deploy(),
        as_served(_add_sidecar(_deploy(ports=[{"containerPort": 80}, {"containerPort": 443}]))),
        gone=[(*CONTAINER, 1), (*C0, "ports", 1)],
    ),
    "reorder containers": RoundTrip(
        _add_sidecar(_deploy()),
        _sidecar_first(_add_sidecar(_deploy())),
        as_served(_add_sidecar(_deploy())),
        kept={(*C0, "imagePullPolicy"): "IfNotPresent"},
    ),
    "switch strategy to Recreate": RoundTrip(
        _deploy(),
        _with_strategy(_deploy(), {"type": "Recreate"}),
        as_served(_deploy()),
        gone=[("spec", "strategy", "rollingUpdate")],
    ),
    "first apply over an object kubectl create made": RoundTrip(
        None,
        _deploy(image="nginx:1.27"),
        as_served(_deploy()),
        kept={("metadata", "uid"): "u-1", (*C0, "resources"): {}},
    ),
    "service drops a port and a label but keeps another writer's label": RoundTrip(
        _service([{"port": 80}, {"port": 443}], app="web", old="yes"),
        _service([{"port": 80, "targetPort": 8080}], app="web"),
        _served_service(_service([{"port": 80}, {"port": 443}], app="web", old="yes"),
                        owner="other"),
        kind="Service",
        kept={("spec", "clusterIP"): "10.0.0.9", ("metadata", "labels", "owner"): "other",
              ("spec", "ports", 0, "protocol"): "TCP"},
        gone=[("metadata", "labels", "old"), ("spec", "ports", 1)],
    ),
    "switch a volume from hostPath to emptyDir": RoundTrip(
        _with_volume(_deploy(), {"name": "data", "hostPath": {"path": "/x"}}),
        _with_volume(_deploy(), {"name": "data", "emptyDir": {}}),
        _with_volume(
            as_served(_deploy()), {"name": "data", "hostPath": {"path": "/x", "type": ""}}
        ),
        gone=[(*POD_SPEC, "volumes", 0, "hostPath")],
    ),
}


@pytest.mark.parametrize("case", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_three_way_patch_applied_to_current_sets_modified_and_keeps_server_fields(
    case: RoundTrip,
) -> None:
    inputs = copy.deepcopy((case.original, case.modified, case.current))
    patch = create_strategic_merge_patch(
        case.original, case.modified, case.current, kind=case.kind
    )
    result = apply_strategic_merge_patch(case.current, patch, kind=case.kind)
    assert_sets(result, case.modified)
    for path, value in case.kept.items():
        assert dig(result, path) == value, path
    for path in case.gone:
        assert dig(result, path) is MISSING, path
    assert (case.original, case.modified, case.current) == inputs


@pytest.mark.parametrize("case", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_three_way_patch_is_empty_once_it_has_been_applied(case: RoundTrip) -> None:
    patch = create_strategic_merge_patch(
        case.original, case.modified, case.current, kind=case.kind
    )
    result = apply_strategic_merge_patch(case.current, patch, kind=case.kind)
    again = create_strategic_merge_patch(case.modified, case.modified, result, kind=case.kind)
    assert again == {}
