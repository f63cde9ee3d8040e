// The official OpenAI client library (npm `openai`) against a running `troupe serve`.
//   node client_test.mjs BASE_URL MODEL PROMPT_IDS_JSON MAX_TOKENS [chat]
// Prints one JSON object: the token ids of a completion made whole and streamed, and (with `chat`)
// the content of a chat completion made whole and streamed, with their usage.
import OpenAI from "openai";

const [baseURL, model, promptJson, maxTokensText, chat] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.TROUPE_TEST_API_KEY ?? "none", maxRetries: 0 });
const prompt = JSON.parse(promptJson);
const max_tokens = Number(maxTokensText);
const out = {};

// return_token_ids is vLLM's extension; the library passes unknown parameters through.
const whole = await client.completions.create({ model, prompt, max_tokens, temperature: 0, return_token_ids: true });
out.completion = { ids: whole.choices[0].token_ids, finish_reason: whole.choices[0].finish_reason, usage: whole.usage };

const stream = await client.completions.create({
  model, prompt, max_tokens, temperature: 0, return_token_ids: true, stream: true,
  stream_options: { include_usage: true },
});
const streamed = { ids: [], text: "", finish_reason: null, usage: null };
for await (const chunk of stream) {
  if (chunk.usage) streamed.usage = chunk.usage;
  for (const choice of chunk.choices) {
    streamed.ids.push(...(choice.token_ids ?? []));
    streamed.text += choice.text ?? "";
    if (choice.finish_reason) streamed.finish_reason = choice.finish_reason;
  }
}
out.completion_stream = streamed;

if (chat === "chat") {
  const messages = [{ role: "user", content: "Tell me about a silver city." }];
  const reply = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  out.chat = { content: reply.choices[0].message.content, role: reply.choices[0].message.role,
               finish_reason: reply.choices[0].finish_reason, usage: reply.usage };
  const chatStream = await client.chat.completions.create({
    model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  const s = { content: "", finish_reason: null, usage: null, role: null };
  for await (const chunk of chatStream) {
    if (chunk.usage) s.usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta?.role) s.role = choice.delta.role;
      s.content += choice.delta?.content ?? "";
      if (choice.finish_reason) s.finish_reason = choice.finish_reason;
    }
  }
  out.chat_stream = s;
}

// Errors come back as the library's typed errors.
try {
  await client.completions.create({ model: "no-such-model", prompt: [1], max_tokens: 1 });
  out.unknown_model_status = 200;
} catch (e) {
  out.unknown_model_status = e.status;
}
console.log(JSON.stringify(out));
