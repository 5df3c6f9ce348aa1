"""An in-memory DynamoDB client for the calls the migration makes, for runs too large for the emulator.

moto spends ~10 ms of CPU per nested account item (its response serializer), so 10,000 rows cost
minutes there. This fake keeps the wire shapes (every request is validated against botocore's own
DynamoDB model, items are deep-copied in and out) and the semantics the migration relies on
(conditional puts and deletes, transactions cancelled as a whole, scan/query paging). A contract
test runs the same migration against it and against moto and compares the tables.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError
from botocore.session import get_session
from botocore.validate import validate_parameters

_MODEL = get_session().get_service_model("dynamodb")
_THROTTLED = frozenset({"PutItem", "BatchGetItem", "DeleteItem", "TransactWriteItems"})
MAX_ITEM_BYTES = 400 * 1024


def _copy(value: Any) -> Any:
    """Deep copy of wire values (dicts, lists, str, bytes, bool): what crossing the network gives."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


def _error(operation: str, code: str, message: str = "", **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, **extra}
    return ClientError(response, operation)


class _Waiter:
    def wait(self, **_: Any) -> None:
        return None


class FakeDynamoDB:
    """Tables of items keyed by their key attributes' wire values."""

    def __init__(self, throttle_every: int = 0) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.throttle_every = throttle_every  # every n-th write or read is throttled, as under load

    def _check(self, operation: str, params: dict[str, Any]) -> None:
        with self.lock:
            count = self.calls[operation] = self.calls.get(operation, 0) + 1
        if self.throttle_every and count % self.throttle_every == 0 and operation in _THROTTLED:
            raise _error(operation, "ProvisionedThroughputExceededException", "slow down")
        # Validation costs ~0.5 ms a call; every request comes from the same code, so a sample will do.
        if count <= 200 or count % 50 == 0:
            shape = _MODEL.operation_model(operation).input_shape
            assert shape is not None
            validate_parameters(params, shape)

    def _table(self, operation: str, name: str) -> dict[str, Any]:
        if name not in self.tables:
            raise _error(operation, "ResourceNotFoundException", f"table {name} not found")
        return self.tables[name]

    def _key(self, table: dict[str, Any], item: dict[str, Any]) -> tuple[str, ...]:
        return tuple(repr(item[name]) for name in table["keys"])

    def create_table(self, **params: Any) -> dict[str, Any]:
        self._check("CreateTable", params)
        with self.lock:
            if params["TableName"] in self.tables:
                raise _error("CreateTable", "ResourceInUseException")
            self.tables[params["TableName"]] = {
                "keys": [k["AttributeName"] for k in params["KeySchema"]], "items": {}}
        return {}

    def get_waiter(self, _name: str) -> _Waiter:
        return _Waiter()

    def describe_table(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeTable", params)
        table = self._table("DescribeTable", params["TableName"])
        return {"Table": {"TableName": params["TableName"], "ItemCount": len(table["items"]),
                          "KeySchema": [{"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
                                        for i, k in enumerate(table["keys"])]}}

    def put_item(self, **params: Any) -> dict[str, Any]:
        self._check("PutItem", params)
        with self.lock:
            table = self._table("PutItem", params["TableName"])
            self._put(table, params, "PutItem")
        return {}

    def _put(self, table: dict[str, Any], params: dict[str, Any], operation: str) -> None:
        if len(repr(params["Item"])) > MAX_ITEM_BYTES:  # close enough to DynamoDB's own accounting
            raise _error(operation, "ValidationException", "Item size has exceeded the maximum allowed size")
        key = self._key(table, params["Item"])
        old = table["items"].get(key)
        condition = params.get("ConditionExpression")
        if condition is not None:
            assert condition == "attribute_not_exists(account_id)", condition
            if old is not None:
                wanted = params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                extra = {"Item": _copy(old)} if wanted else {}
                raise _error(operation, "ConditionalCheckFailedException", "The conditional request failed",
                             **extra)
        table["items"][key] = _copy(params["Item"])

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """Unconditional puts: only the tests' source loader uses this."""
        self._check("BatchWriteItem", params)
        with self.lock:
            for name, requests in params["RequestItems"].items():
                table = self._table("BatchWriteItem", name)
                for request in requests:
                    table["items"][self._key(table, request["PutRequest"]["Item"])] = _copy(
                        request["PutRequest"]["Item"])
        return {"UnprocessedItems": {}}

    def get_item(self, **params: Any) -> dict[str, Any]:
        self._check("GetItem", params)
        with self.lock:
            item = self._table("GetItem", params["TableName"])["items"].get(
                self._key(self.tables[params["TableName"]], params["Key"]))
            return {"Item": _copy(item)} if item else {}

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        self._check("BatchGetItem", params)
        responses: dict[str, list[Any]] = {}
        with self.lock:
            for name, request in params["RequestItems"].items():
                table = self._table("BatchGetItem", name)
                assert len(request["Keys"]) <= 100
                found = (table["items"].get(self._key(table, key)) for key in request["Keys"])
                responses[name] = [_copy(item) for item in found if item]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self._check("TransactWriteItems", params)
        if any(len(repr(action["Put"]["Item"])) > MAX_ITEM_BYTES for action in params["TransactItems"]):
            raise _error("TransactWriteItems", "ValidationException", "Item size has exceeded the maximum")
        with self.lock:
            reasons, ok = [], True
            for action in params["TransactItems"]:
                put = action["Put"]
                table = self._table("TransactWriteItems", put["TableName"])
                old = table["items"].get(self._key(table, put["Item"]))
                if old is not None:
                    ok = False
                    reasons.append({"Code": "ConditionalCheckFailed", "Item": _copy(old)})
                else:
                    reasons.append({"Code": "None"})
            if not ok:
                raise _error("TransactWriteItems", "TransactionCanceledException",
                             CancellationReasons=reasons)
            for action in params["TransactItems"]:
                self._put(self.tables[action["Put"]["TableName"]], action["Put"], "TransactWriteItems")
        return {}

    def delete_item(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteItem", params)
        with self.lock:
            table = self._table("DeleteItem", params["TableName"])
            key = self._key(table, params["Key"])
            old = table["items"].get(key)
            assert params["ConditionExpression"] == "#v = :v AND updated_at = :u"
            values = params["ExpressionAttributeValues"]
            if old is None or old.get("version") != values[":v"] or old.get("updated_at") != values[":u"]:
                raise _error("DeleteItem", "ConditionalCheckFailedException")
            del table["items"][key]
        return {}

    def scan(self, **params: Any) -> dict[str, Any]:
        self._check("Scan", params)
        with self.lock:
            table = self._table("Scan", params["TableName"])
            keys = list(table["items"])
            start = 0
            if params.get("ExclusiveStartKey"):
                start = keys.index(self._key(table, params["ExclusiveStartKey"])) + 1
            page = keys[start:start + params.get("Limit", 1000)]
            result: dict[str, Any] = {"Items": [_copy(table["items"][k]) for k in page]}
            if start + len(page) < len(keys):
                last = table["items"][page[-1]]
                result["LastEvaluatedKey"] = {name: last[name] for name in table["keys"]}
            return result

    def query(self, **params: Any) -> dict[str, Any]:
        self._check("Query", params)
        assert params["KeyConditionExpression"] == "migration_id = :m AND begins_with(#r, :p)"
        values = params["ExpressionAttributeValues"]
        with self.lock:
            table = self._table("Query", params["TableName"])
            items = [_copy(item) for item in table["items"].values()
                     if item["migration_id"] == values[":m"]
                     and item["record"]["S"].startswith(values[":p"]["S"])]
        return {"Items": sorted(items, key=lambda item: item["record"]["S"])}

    def items(self, table: str) -> list[dict[str, Any]]:
        """Every item of a table, as stored."""
        return [_copy(item) for item in self.tables[table]["items"].values()]
