#!/usr/bin/env python3
"""Writes orchestrator/openapi.json, the OpenAPI 3 description of slorag's
HTTP API.  The description is data in this file, kept beside the code it
describes; the integration suite checks that every documented path and
method is routed by the server.  Run after changing the API:

    python3 tools/openapi.py > orchestrator/openapi.json
"""
import json
import sys


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def body(schema, required=True, content="application/json"):
    return {"required": required, "content": {content: {"schema": schema}}}


def resp(desc, schema=None, content="application/json"):
    r = {"description": desc}
    if schema is not None:
        r["content"] = {content: {"schema": schema}}
    return r


ERRORS = {code: {"$ref": "#/components/responses/Error"} for code in
          ("400", "401", "403", "404", "405", "409", "413", "415", "422", "429", "500", "502", "503", "504")}


def op(summary, ok, req=None, params=None, security=None, tags=None, extra_ok=None):
    o = {"summary": summary, "responses": dict(ok)}
    o["responses"].update(ERRORS)
    if req:
        o["requestBody"] = req
    if params:
        o["parameters"] = params
    if security is not None:
        o["security"] = security
    if tags:
        o["tags"] = tags
    return o


def path_param(name, desc):
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string"}}


COLL = path_param("collection", "collection name: 1-64 of [A-Za-z0-9._-], not starting with '.'")
DOC = path_param("document_id", "document id (1-256 bytes; may contain '/')")
TEN = path_param("tenant", "tenant id: 1-64 of [a-z0-9_-]")
KEY = path_param("key_id", "API key id")
ADMIN = [{"admin": []}]
PUBLIC = []

schemas = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "example": "invalid_request"},
            "message": {"type": "string"},
            "request_id": {"type": "string"}}}}},
    "QueryRequest": {"type": "object", "required": ["question"], "additionalProperties": False, "properties": {
        "question": {"type": "string", "minLength": 1},
        "collection": {"type": "string", "default": "default"},
        "k": {"type": "integer", "minimum": 1},
        "deadline_ms": {"type": "integer", "minimum": 1, "maximum": 600000},
        "mode": {"type": "string", "enum": ["lexical", "dense", "hybrid"]},
        "tier": {"type": "string", "enum": ["extractive", "small", "medium", "large"]},
        "config": {"type": "string", "example": "hybrid/k5/medium/t256",
                   "description": "use exactly this configuration (not with tier, mode or k)"},
        "stream": {"type": "boolean", "default": False},
        "slo": {"type": "object", "description": "tighten the tenant's objectives for this request",
                "properties": {"quality_min": {"type": "number"}, "cost_max": {"type": "number"},
                               "latency_p95_ms": {"type": "integer"}, "deadline_ms": {"type": "integer"}}}}},
    "Citation": {"type": "object", "properties": {
        "document_id": {"type": "string"}, "title": {"type": "string"}, "chunk_id": {"type": "integer"},
        "start": {"type": "integer"}, "end": {"type": "integer"}, "snippet": {"type": "string"}}},
    "Plan": {"type": "object", "properties": {
        "retriever": {"type": "string"}, "k": {"type": "integer"}, "rerank": {"type": "boolean"},
        "generator_tier": {"type": "string"}, "replicas": {"type": "integer"}, "aggregation": {"type": "string"},
        "max_tokens": {"type": "integer"}, "deadline_ms": {"type": "integer"}, "min_confidence": {"type": "number"},
        "reason": {"type": "string"}}},
    "StageNote": {"type": "object", "properties": {"stage": {"type": "string"}, "reason": {"type": "string"}}},
    "Signals": {"type": "object", "properties": {
        "top_score": {"type": "number"}, "score_margin": {"type": "number"}, "overlap": {"type": "number"},
        "candidates": {"type": "integer"}, "lexical_hits": {"type": "integer"}, "dense_hits": {"type": "integer"}}},
    "QueryResponse": {"type": "object", "properties": {
        "request_id": {"type": "string"},
        "answer": {"type": "string", "nullable": True},
        "abstained": {"type": "boolean"},
        "citations": {"type": "array", "items": ref("Citation")},
        "usage": {"type": "object", "properties": {
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
            "cost": {"type": "number"}, "estimated": {"type": "boolean"}}},
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
        "decision": {"type": "object", "properties": {
            "intent": {"type": "string"}, "intent_confidence": {"type": "number"}, "intent_cue": {"type": "string"},
            "collection": {"type": "string"}, "plan": ref("Plan"), "signals": ref("Signals"),
            "actual": {"type": "object", "properties": {
                "confidence": {"type": "number"}, "backend": {"type": "string"}, "attempts": {"type": "integer"}}},
            "skipped": {"type": "array", "items": ref("StageNote")},
            "expanded": {"type": "array", "items": ref("StageNote")},
            "slo_met": {"type": "object", "additionalProperties": {"type": "boolean"}}}}}},
    "RetrieveResponse": {"type": "object", "properties": {
        "request_id": {"type": "string"}, "collection": {"type": "string"}, "mode": {"type": "string"},
        "k": {"type": "integer"}, "took_ms": {"type": "number"}, "signals": ref("Signals"),
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "rank": {"type": "integer"}, "document_id": {"type": "string"}, "title": {"type": "string"},
            "chunk_id": {"type": "integer"}, "start": {"type": "integer"}, "end": {"type": "integer"},
            "text": {"type": "string"}, "score": {"type": "number"}, "scores": {"type": "object"}}}}}},
    "DocumentIn": {"type": "object", "required": ["id", "text"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 256}, "title": {"type": "string"},
        "text": {"type": "string", "minLength": 1}, "metadata": {"type": "object"}, "source": {"type": "string"}}},
    "Tenant": {"type": "object", "properties": {
        "id": {"type": "string"}, "created_at": {"type": "integer"},
        "keys": {"type": "array", "items": {"type": "object", "properties": {
            "key_id": {"type": "string"}, "created_at": {"type": "integer"}, "revoked": {"type": "boolean"}}}},
        "profile": {"type": "object", "nullable": True},
        "limits": {"type": "object", "properties": {
            "requests_per_second": {"type": "number"}, "tokens_per_minute": {"type": "number"}}}}},
    "IntentExampleList": {"type": "array", "maxItems": 500, "items": {
        "type": "object", "required": ["intent", "question"], "additionalProperties": False, "properties": {
            "intent": {"type": "string", "enum": ["factoid", "explanation", "procedural", "comparison", "list",
                                                  "summary", "chitchat", "out_of_scope"]},
            "question": {"type": "string", "minLength": 1, "maxLength": 512,
                         "description": "at most 512 bytes, at least one word"}}}},
    "IntentExamples": {"type": "object", "properties": {
        "tenant": {"type": "string"}, "examples": ref("IntentExampleList"),
        "model": {"type": "object", "description": "PUT only: the retrained model",
                  "properties": {"examples": {"type": "integer"}, "builtin_examples": {"type": "integer"},
                                 "training_ms": {"type": "number"}}}}},
    "ChatRequest": {"type": "object", "required": ["model", "messages"], "properties": {
        "model": {"type": "string", "description": "collection, optionally @tier: handbook@large"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["role"], "properties": {
            "role": {"type": "string"}, "content": {}}}},
        "stream": {"type": "boolean"}, "stream_options": {"type": "object"},
        "max_tokens": {"type": "integer"}, "max_completion_tokens": {"type": "integer"}}},
}

paths = {
    "/healthz": {"get": op("Process is alive", {"200": resp("ok", {"type": "object"})}, security=PUBLIC,
                           tags=["operations"])},
    "/readyz": {"get": op("Ready to serve (store and indexes open, not draining)",
                          {"200": resp("ready", {"type": "object"})}, security=PUBLIC, tags=["operations"])},
    "/metrics": {"get": op("Prometheus metrics (open mode, or the admin key)",
                           {"200": resp("text exposition format", {"type": "string"}, "text/plain")},
                           security=ADMIN, tags=["operations"])},
    "/v1/stats": {"get": op("Rolling per-tenant statistics (admin, dashboard or tenant key)",
                            {"200": resp("stats", {"type": "object"})}, tags=["operations"])},
    "/openapi.json": {"get": op("This description", {"200": resp("OpenAPI 3", {"type": "object"})},
                                security=PUBLIC, tags=["operations"])},
    "/dashboard": {"get": op("The built-in live dashboard page",
                             {"200": resp("HTML page", {"type": "string"}, "text/html")}, security=PUBLIC,
                             tags=["operations"])},
    "/v1/query": {"post": op("Answer a question over a collection",
                             {"200": resp("answer with citations and the decision record", ref("QueryResponse"))},
                             req=body(ref("QueryRequest")), tags=["questions"])},
    "/v1/retrieve": {"post": op("Retrieval only: ranked chunks with per-retriever scores and signals",
                                {"200": resp("results", ref("RetrieveResponse"))}, req=body(ref("QueryRequest")),
                                tags=["questions"])},
    "/v1/feedback": {"post": op("Rate an answer the tenant received (teaches the planner)",
                                {"200": resp("recorded", {"type": "object"})},
                                req=body({"type": "object", "required": ["request_id", "rating"], "properties": {
                                    "request_id": {"type": "string"},
                                    "rating": {"type": "number", "minimum": 0, "maximum": 1},
                                    "comment": {"type": "string"}}}), tags=["questions"])},
    "/v1/chat/completions": {"post": op("OpenAI-compatible chat completion over a collection",
                                        {"200": resp("chat.completion, or an SSE stream of chunks", {"type": "object"})},
                                        req=body(ref("ChatRequest")), tags=["openai"])},
    "/v1/models": {"get": op("OpenAI-compatible model list: the tenant's collections",
                             {"200": resp("list", {"type": "object"})}, tags=["openai"])},
    "/v1/collections": {"get": op("The tenant's collections", {"200": resp("collections", {"type": "object"})},
                                  tags=["documents"])},
    "/v1/collections/{collection}": {"delete": op("Delete a collection and everything in it",
                                                  {"200": resp("deleted", {"type": "object"})}, params=[COLL],
                                                  tags=["documents"])},
    "/v1/collections/{collection}/documents": {"post": op(
        "Store documents (a JSON array, or one text/plain or text/markdown body with ?id=&title=)",
        {"201": resp("stored", {"type": "object"})},
        req={"required": True, "content": {
            "application/json": {"schema": {"type": "array", "items": ref("DocumentIn")}},
            "text/plain": {"schema": {"type": "string"}}, "text/markdown": {"schema": {"type": "string"}}}},
        params=[COLL, {"name": "id", "in": "query", "schema": {"type": "string"}},
                {"name": "title", "in": "query", "schema": {"type": "string"}}], tags=["documents"])},
    "/v1/collections/{collection}/documents/{document_id}": {
        "get": op("Read a document", {"200": resp("document", {"type": "object"})}, params=[COLL, DOC],
                  tags=["documents"]),
        "delete": op("Delete a document", {"200": resp("deleted", {"type": "object"})}, params=[COLL, DOC],
                     tags=["documents"])},
    "/v1/admin/tenants": {
        "post": op("Create a tenant and its first API key (shown once)",
                   {"201": resp("tenant and api_key", {"type": "object"})},
                   req=body({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}),
                   security=ADMIN, tags=["admin"]),
        "get": op("List tenants", {"200": resp("tenants", {"type": "object"})}, security=ADMIN, tags=["admin"])},
    "/v1/admin/tenants/{tenant}": {
        "get": op("Read a tenant", {"200": resp("tenant", ref("Tenant"))}, params=[TEN], security=ADMIN,
                  tags=["admin"]),
        "delete": op("Delete a tenant, its keys and its collections", {"200": resp("deleted", {"type": "object"})},
                     params=[TEN], security=ADMIN, tags=["admin"])},
    "/v1/admin/tenants/{tenant}/keys": {"post": op("Issue another API key (shown once)",
                                                   {"201": resp("api_key and key_id", {"type": "object"})},
                                                   params=[TEN], security=ADMIN, tags=["admin"])},
    "/v1/admin/tenants/{tenant}/keys/{key_id}": {"delete": op("Revoke an API key",
                                                              {"200": resp("revoked", {"type": "object"})},
                                                              params=[TEN, KEY], security=ADMIN, tags=["admin"])},
    "/v1/admin/tenants/{tenant}/profile": {"put": op("Set the tenant's SLO profile",
                                                     {"200": resp("tenant", ref("Tenant"))},
                                                     req=body({"type": "object"}), params=[TEN], security=ADMIN,
                                                     tags=["admin"])},
    "/v1/admin/tenants/{tenant}/limits": {"put": op("Set the tenant's rate limits (0 = unlimited)",
                                                    {"200": resp("tenant", ref("Tenant"))},
                                                    req=body({"type": "object", "properties": {
                                                        "requests_per_second": {"type": "number"},
                                                        "tokens_per_minute": {"type": "number"}}}),
                                                    params=[TEN], security=ADMIN, tags=["admin"])},
    "/v1/admin/tenants/{tenant}/intents": {
        "put": op("Replace the tenant's labelled intent examples (the classifier retrains at once)",
                  {"200": resp("the stored examples and the retrained model", ref("IntentExamples"))},
                  req=body({"type": "object", "required": ["examples"], "additionalProperties": False,
                            "properties": {"examples": ref("IntentExampleList")}}),
                  params=[TEN], security=ADMIN, tags=["admin"]),
        "get": op("Read the tenant's labelled intent examples",
                  {"200": resp("the stored examples", ref("IntentExamples"))}, params=[TEN], security=ADMIN,
                  tags=["admin"])},
    "/v1/admin/reload": {"post": op("Reload the configuration (as SIGHUP)",
                                    {"202": resp("requested", {"type": "object"})}, security=ADMIN,
                                    tags=["admin"])},
}

doc = {
    "openapi": "3.0.3",
    "info": {"title": "slorag", "version": "0.1.0",
             "description": "SLO-driven question answering over a tenant's documents. Errors are "
                            "{\"error\": {\"code\", \"message\", \"request_id\"}} (OpenAI-style on /v1/chat/completions)."},
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "security": [{"tenant": []}],
    "components": {
        "securitySchemes": {
            "tenant": {"type": "http", "scheme": "bearer", "description": "a tenant API key (not needed in open mode)"},
            "admin": {"type": "http", "scheme": "bearer", "description": "the admin key"}},
        "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": ref("Error")}}}},
        "schemas": schemas},
    "paths": paths,
}
json.dump(doc, sys.stdout, indent=1, sort_keys=False)
sys.stdout.write("\n")
