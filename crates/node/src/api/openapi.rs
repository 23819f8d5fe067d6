//! The OpenAPI document served at `/openapi.json`.

use axum::Json;
use serde_json::{json, Value};

fn op(summary: &str, ok: &str, errors: &[&str]) -> Value {
    let mut responses = json!({ ok: {"description": "success"} });
    for e in errors {
        responses[*e] = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    }
    json!({"summary": summary, "responses": responses})
}

fn with_id(mut v: Value, name: &str, desc: &str) -> Value {
    v["parameters"] = json!([{"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}}]);
    v
}

fn with_body(mut v: Value, desc: &str) -> Value {
    v["requestBody"] = json!({"required": true, "description": desc, "content": {
        "application/json": {"schema": {"type": "object", "required": ["tx"], "properties": {"tx": {"$ref": "#/components/schemas/SignedTx"}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": "canonical encoding (version byte + Borsh)"}}}});
    v
}

pub async fn document() -> Json<Value> {
    let tx_errors = ["400", "401", "402", "404", "409", "413", "422"];
    let mut infer = with_body(
        op(
            "Submit a signed inference request; with wait=true, block until the receipt is final",
            "200",
            &tx_errors,
        ),
        "signed `infer` transaction",
    );
    infer["parameters"] = json!([
        {"name": "wait", "in": "query", "schema": {"type": "boolean"}},
        {"name": "timeout_ms", "in": "query", "schema": {"type": "integer"}}]);
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "Verity node API", "version": "1", "description": "Verifiable ONNX inference settled on a BFT ledger. Errors are {\"error\": {\"code\", \"message\"}}."},
        "paths": {
            "/v1/status": {"get": op("Height, finalized state root, validator set, identity", "200", &[])},
            "/v1/models": {"get": op("List published model manifests", "200", &[])},
            "/v1/models/{id}": {"get": with_id(op("A model manifest by CID, name or name@version", "200", &["400", "404"]), "id", "CIDv1, name, or name@version")},
            "/v1/models/{id}/onnx": {"get": with_id(op("A published model's ONNX bytes from this node's own store (application/octet-stream)", "200", &["400", "404"]), "id", "CIDv1, name, or name@version")},
            "/v1/accounts/{addr}": {"get": with_id(op("Balance and nonces of an account", "200", &["400"]), "addr", "0x address")},
            "/v1/txs": {"post": with_body(op("Submit any signed transaction (transfer, publish, infer; an assigned executor's result or failure report)", "202", &tx_errors), "signed transaction")},
            "/v1/txs/{id}": {"get": with_id(op("Status of a transaction", "200", &["400", "404"]), "id", "0x transaction id")},
            "/v1/infer": {"post": infer},
            "/v1/requests/{id}": {"get": with_id(op("Status (ordered; assigned, with executor, deadline and, once reassigned, reassigned_from; settled; failed, with the reason: an executor's reported error or expiry), outputs and receipt of an inference request", "200", &["400", "404"]), "id", "0x request id")},
            "/v1/receipts/{id}": {"get": with_id(op("The receipt bundle: receipt, input, output, Merkle proof, headers, finalization certificate", "200", &["400", "404"]), "id", "0x receipt id")},
            "/v1/roots/{height}": {"get": with_id(op("State root after a height, and the finalized header at that height", "200", &["404"]), "height", "block height")},
            "/metrics": {"get": op("Prometheus metrics", "200", &[])}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Tensor": {"type": "object", "required": ["shape", "dtype", "data"], "properties": {
                "shape": {"type": "array", "items": {"type": "integer"}},
                "dtype": {"type": "string", "enum": ["float32", "float64", "int64", "int32", "int8", "uint8", "bool"]},
                "data": {"type": "array"}}},
            "SignedTx": {"type": "object", "required": ["tx", "signature"], "properties": {
                "tx": {"type": "object", "required": ["chain_id", "from", "nonce", "body"]},
                "signature": {"type": "string", "description": "0x r||s||v (65 bytes), secp256k1 over keccak256(\"verity:v1:tx:\" || canonical tx)"}}}
        }}
    }))
}
