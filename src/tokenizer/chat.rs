//! Chat prompts: a model's own chat template (Jinja, as Hugging Face's `apply_chat_template`
//! and llama.cpp's server render it) applied to a list of messages, through minijinja with
//! Python's string methods (`.strip()`, `.startswith()`, ...) that templates use.

use super::TextTokenizer;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// Its text.
    pub content: String,
}

/// A model's chat template with the special tokens it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// The text of the beginning-of-sequence token (`bos_token` in the template).
    pub bos_token: String,
    /// The text of the end-of-sequence token (`eos_token` in the template).
    pub eos_token: String,
}

impl ChatTemplate {
    /// The prompt for `messages`, ending where the assistant's answer starts.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let failed = |e: minijinja::Error| Error::ChatTemplate {
            reason: match e.detail() {
                Some(detail) => format!("{} ({detail})", e.kind()),
                None => e.to_string(),
            },
        };
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        let template = env.template_from_str(&self.source).map_err(failed)?;
        template
            .render(minijinja::context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(failed)
    }
}

impl TextTokenizer {
    /// The token ids of `messages` through the model's chat template. A template that writes
    /// the BOS token itself is not given a second one.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let template = self.chat.as_ref().ok_or_else(|| Error::NoChatTemplate {
            tokenizer: self.origin.clone(),
        })?;
        let text = template.render(messages)?;
        match text.strip_prefix(&template.bos_token) {
            Some(rest) if self.bos_to_prepend.is_some() && !template.bos_token.is_empty() => {
                self.encode(rest)
            }
            _ => self.encode(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    /// ChatML (SmolLM2's and Qwen's shape) and a Llama 3 style template, with Python string
    /// methods, rendered to the text Hugging Face's `apply_chat_template` writes for them.
    #[test]
    fn templates_render_as_hugging_face_renders_them() {
        let chatml = ChatTemplate {
            source: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}".into(),
            bos_token: String::new(),
            eos_token: "<|im_end|>".into(),
        };
        let messages = [message("system", "Be brief."), message("user", "Hi")];
        assert_eq!(
            chatml.render(&messages).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let llama3 = ChatTemplate {
            source: "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content.strip() + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}".into(),
            bos_token: "<|begin_of_text|>".into(),
            eos_token: "<|eot_id|>".into(),
        };
        assert_eq!(
            llama3.render(&[message("user", "  Hi  ")]).unwrap(),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    /// A template's own `raise_exception` and a broken template are errors naming the cause.
    #[test]
    fn template_failures_say_why() {
        let strict = ChatTemplate {
            source: "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}ok".into(),
            bos_token: String::new(),
            eos_token: String::new(),
        };
        let err = strict.render(&[message("assistant", "x")]).unwrap_err();
        assert!(err.to_string().contains("must start with user"), "{err}");
        let broken = ChatTemplate {
            source: "{% for m in messages %}".into(),
            ..strict
        };
        let err = broken.render(&[message("user", "x")]).unwrap_err();
        assert!(err.to_string().contains("chat template failed"), "{err}");
        let none = TextTokenizer::byte_level();
        let err = none.encode_chat(&[message("user", "x")]).unwrap_err();
        assert!(err.to_string().contains("no chat template"), "{err}");
    }
}
