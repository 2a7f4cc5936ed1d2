"""The official `openai` Python client against a running `llm-bench serve`.

    python3 tests/it/openai_client.py BASE_URL EXPECTED.json

EXPECTED.json holds what the Rust test (tests/it/serve.rs) got from `llm-bench generate` for
the same model: {"model", "prompt", "tokens", "completion", "chat": [messages], "chat_tokens",
"chat_answer"}. Every check is an assertion; the script prints one line per check and exits 0
only when all passed. The client parses the server's JSON and its server-sent events itself,
so this checks the wire format as OpenAI's SDK reads it, not as the project's own client does.
"""

import json
import sys

import openai


def main(base, expected_path):
    want = json.load(open(expected_path))
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)

    ids = [m.id for m in client.models.list()]
    assert ids == [want["model"]], f"models.list(): {ids}"
    print("models.list:", ids)

    # A completion, whole: greedy text and usage as `generate` gives them.
    done = client.completions.create(
        model=want["model"], prompt=want["prompt"], max_tokens=want["tokens"], temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert done.object == "text_completion", done
    assert done.choices[0].text == want["completion"], (done.choices[0].text, want["completion"])
    assert done.choices[0].finish_reason == "length", done
    assert done.usage.completion_tokens == want["tokens"], done.usage
    assert done.usage.total_tokens == done.usage.prompt_tokens + want["tokens"], done.usage
    print("completions.create:", repr(done.choices[0].text), done.usage)

    # The same, streamed: the SDK's event parser gives one chunk per token, then the usage.
    chunks = list(client.completions.create(
        model=want["model"], prompt=want["prompt"], max_tokens=want["tokens"], temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
    ))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == want["completion"], (text, want["completion"])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == want["tokens"], chunks[-1]
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "length" and all(r is None for r in reasons[:-1]), reasons
    print("completions.create(stream):", len(chunks), "chunks")

    # Chat, whole and streamed: the model's own template, the answer `generate` gives its prompt.
    chat = client.chat.completions.create(
        model=want["model"], messages=want["chat"], max_tokens=want["chat_tokens"], temperature=0,
    )
    message = chat.choices[0].message
    assert message.role == "assistant" and message.content == want["chat_answer"], message
    assert chat.choices[0].finish_reason == "stop", chat
    print("chat.completions.create:", repr(message.content))
    pieces = list(client.chat.completions.create(
        model=want["model"], messages=want["chat"], max_tokens=want["chat_tokens"], temperature=0,
        stream=True,
    ))
    assert pieces[0].choices[0].delta.role == "assistant", pieces[0]
    content = "".join(p.choices[0].delta.content or "" for p in pieces if p.choices)
    assert content == want["chat_answer"], (content, want["chat_answer"])
    print("chat.completions.create(stream):", len(pieces), "chunks")

    # Bad input: the SDK raises its 400 error, whose body names the field.
    try:
        client.completions.create(model=want["model"], prompt="hi", max_tokens=0)
        raise AssertionError("max_tokens 0 was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and "max_tokens" in str(e), e
        print("BadRequestError:", e.status_code, e.body)
    try:
        client.completions.create(model="no-such-model", prompt="hi", max_tokens=1)
        raise AssertionError("an unknown model was accepted")
    except openai.BadRequestError as e:
        assert "no-such-model" in str(e), e
        print("BadRequestError:", e.status_code, e.body)
    print("openai", openai.__version__, "ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
