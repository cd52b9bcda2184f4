#!/usr/bin/env python3
"""make-prompt-fixture.py: the golden prompts behind tests/test_prompt_assembly.c.

Why: our prompt assembly for images and video frames (chat rendering, "<start_of_image>" expansion,
tokenization, the vqa layout of timestamped frames, image preprocessing) must give exactly what
transformers' Gemma3Processor gives for the same pictures and text. This script builds that processor
from local parts only:

  tokenizer        GemmaTokenizer converted from assets/tokenizer/tiny.model (Gemma 3's settings and
                   special pieces; see make-tokenizer-fixture.py), with add_bos_token, the model-specific
                   tokens boi "<start_of_image>", eoi "<end_of_image>" and image "<image_soft_token>"
                   as Gemma 3's tokenizer_config.json names them, the SentencePiece model's CONTROL and
                   USER_DEFINED pieces as special added tokens (as Gemma 3's tokenizer.json has them),
                   and "<image_soft_token>" at id 262144: the id the runtime gives it for the tiny VLM
                   (assets/gemma3-tiny-vlm/config.json image_token_index; the real Gemma 3 id too)
  image processor  Gemma3ImageProcessorPil as Gemma 3's preprocessor_config.json sets it: 48 x 48 (the
                   tiny VLM's image_size), BILINEAR, rescale 1/255, mean = std = 0.5, no pan-and-scan
  processor        Gemma3Processor(image_seq_length=16: the tiny VLM's mm_tokens_per_image) with Gemma 3's
                   chat template (tokenizer_config.json of google/gemma-3-4b-it, copied below)

and renders three prompts with it:

  a  a chat turn with one image and a question: apply_chat_template on
     [{"type": "image"}, {"type": "text", "text": QUESTION_A}], then the processor on that text
  b  the vqa video layout: one user turn whose content is, per frame, the text "Frame i at mm:ss.s:"
     and the frame, then the question; rendered by apply_chat_template, which must equal the text
     `unisparse vqa` builds (asserted here, from its documented format)
  c  a plain prompt (no chat): the processor on "<start_of_image>" + text, adding BOS itself

add_special_tokens=False for a and b (the template writes "<bos>"), True for c. Written under
assets/prompt/:

  prompt.safetensors
    rgb_a, rgb_b0, rgb_b1, rgb_b2  U8 [H, W, 3]   the pictures (drawn here), RGB8 as decoded frames are
    pixels_a, pixels_b            F32 [n, 3, 48, 48]   the processor's pixel_values
    ids_a, ids_b, ids_c            I64 [T]          the processor's input_ids
    types_a, types_b, types_c      I64 [T]          its token_type_ids (1 on image soft tokens)
    __metadata__: text_a/b/c (the text the processor tokenized), user_a / user_c (the prompt given to
    our side), times_b (frame times in seconds, comma-separated), question_b, image_token_id, versions

Usage: python3 -m pip install transformers torch pillow sentencepiece protobuf &&
       python3 scripts/make-prompt-fixture.py   (about 150 KB; the tensors are deterministic, the order of
       the metadata keys in the header is safetensors' own)
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AddedToken, Gemma3ImageProcessorPil, Gemma3Processor, GemmaTokenizer
from transformers.image_utils import PILImageResampling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "assets", "prompt")
TINY_MODEL = os.path.join(ROOT, "assets", "tokenizer", "tiny.model")
VLM_CONFIG = os.path.join(ROOT, "assets", "gemma3-tiny-vlm", "config.json")

# Gemma 3's chat template, verbatim from google/gemma-3-4b-it tokenizer_config.json.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)

QUESTION_A = "What is shown in this picture?"
USER_C = "<start_of_image>Describe the image."
TIMES_B = [0.0, 2.5, 75.3]
QUESTION_B = "What changes between the frames?"


def build_tokenizer(image_token_id):
    kw = GemmaTokenizer.convert_to_native_format(vocab_file=TINY_MODEL)
    specials = kw.pop("additional_special_tokens")
    assert image_token_id >= len(kw["vocab"])
    kw["vocab"]["<image_soft_token>"] = image_token_id  # placed as the runtime places it (see above)
    tok = GemmaTokenizer(**kw, add_bos_token=True, add_eos_token=False,
                         extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                               "image_token": "<image_soft_token>"})
    tok.add_tokens([AddedToken(str(t), special=True, normalized=False) for t in specials])
    # the converted tokenizer must be SentencePiece's: every case of the tokenizer fixture
    with open(os.path.join(ROOT, "assets", "tokenizer", "tiny.json"), encoding="utf-8") as f:
        for case in json.load(f)["cases"]:
            got = tok(case["text"], add_special_tokens=False).input_ids
            assert got == case["ids"], (case["text"], got, case["ids"])
    assert tok.image_token_id == image_token_id and tok.convert_tokens_to_ids("<bos>") == 2
    return tok


def draw(w, h, seed, shift):
    """A smooth picture with a moving box and some noise, RGB8 [h, w, 3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / 5.0 + shift), 128 + 100 * np.cos(y / 7.0 - shift),
                    255 * (x + y) / (w + h)], axis=-1)
    x0, y0 = int(w * (0.1 + 0.2 * shift)) % w, int(h * 0.3)
    img[y0:y0 + h // 3, x0:x0 + w // 4] = (250, 30, 40)
    img += rng.normal(0, 12, img.shape)
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def vqa_text(times, question):
    """The text `unisparse vqa` writes (pipeline/multimodal/video_prompt.h), before image expansion."""
    s = "<bos><start_of_turn>user\n"
    for i, t in enumerate(times):
        mm = int(t / 60.0)
        sec = "%04.1f" % (t - 60.0 * mm)
        if sec == "60.0":
            mm, sec = mm + 1, "00.0"
        s += "Frame %d at %02d:%s:<start_of_image>" % (i + 1, mm, sec)
    return s + question.strip() + "<end_of_turn>\n<start_of_turn>model\n"


def run(processor, text, images, add_special_tokens):
    out = processor(text=text, images=images, add_special_tokens=add_special_tokens, return_tensors="pt")
    ids = out["input_ids"][0].to(torch.int64).contiguous()
    types = out["token_type_ids"][0].to(torch.int64).contiguous()
    assert out["attention_mask"].all()
    return ids, types, out["pixel_values"].to(torch.float32).contiguous()


def main():
    with open(VLM_CONFIG) as f:
        cfg = json.load(f)
    size, per_image = cfg["vision_config"]["image_size"], cfg["mm_tokens_per_image"]
    tok = build_tokenizer(cfg["image_token_index"])
    image_processor = Gemma3ImageProcessorPil(
        size={"height": size, "width": size}, resample=PILImageResampling.BILINEAR, do_resize=True,
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3,
        do_convert_rgb=True, do_pan_and_scan=False)
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tok, chat_template=GEMMA3_CHAT_TEMPLATE,
                                image_seq_length=per_image)

    # a: one image, a question, the chat template; the image shrinks much more in height than in width
    rgb_a = draw(50, 110, 1, 0.0)
    msgs_a = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION_A}]}]
    text_a = processor.apply_chat_template(msgs_a, tokenize=False, add_generation_prompt=True)
    assert text_a == "<bos><start_of_turn>user\n<start_of_image>" + QUESTION_A + \
        "<end_of_turn>\n<start_of_turn>model\n", text_a
    ids_a, types_a, pixels_a = run(processor, text_a, [rgb_a], False)

    # b: three video frames (64 x 36: wider than tall, shrunk across, stretched down), timestamps, question
    frames = [draw(64, 36, 10 + i, 0.7 * i) for i in range(len(TIMES_B))]
    content = []
    for i, t in enumerate(TIMES_B):
        mm = int(t / 60.0)
        content += [{"type": "text", "text": "Frame %d at %02d:%04.1f: " % (i + 1, mm, t - 60.0 * mm)},
                    {"type": "image"}]
    content.append({"type": "text", "text": QUESTION_B})
    text_b = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                           add_generation_prompt=True)
    assert text_b == vqa_text(TIMES_B, QUESTION_B), (text_b, vqa_text(TIMES_B, QUESTION_B))
    ids_b, types_b, pixels_b = run(processor, text_b, [frames], False)

    # c: no chat template, BOS from the tokenizer
    ids_c, types_c, pixels_c = run(processor, USER_C, [rgb_a], True)
    assert torch.equal(pixels_c, pixels_a)

    img = tok.image_token_id
    for ids, types, n in ((ids_a, types_a, 1), (ids_b, types_b, len(frames)), (ids_c, types_c, 1)):
        assert ids[0].item() == 2 and (ids == 2).sum().item() == 1, "one BOS, first"
        assert torch.equal(types, (ids == img).long()) and types.sum().item() == n * per_image

    os.makedirs(OUT, exist_ok=True)
    tensors = {"rgb_a": torch.from_numpy(rgb_a), "pixels_a": pixels_a, "ids_a": ids_a, "types_a": types_a,
               "pixels_b": pixels_b, "ids_b": ids_b, "types_b": types_b, "ids_c": ids_c, "types_c": types_c}
    for i, fr in enumerate(frames):
        tensors["rgb_b%d" % i] = torch.from_numpy(fr)
    import PIL
    import transformers
    meta = {"text_a": text_a, "user_a": "<start_of_image>" + QUESTION_A, "text_b": text_b,
            "times_b": ",".join(repr(t) for t in TIMES_B), "question_b": QUESTION_B, "text_c": USER_C,
            "user_c": USER_C, "image_token_id": str(img), "transformers": transformers.__version__,
            "pillow": PIL.__version__, "torch": torch.__version__}
    path = os.path.join(OUT, "prompt.safetensors")
    save_file(tensors, path, metadata=meta)
    os.chmod(path, 0o644)  # save_file creates it owner-only
    print(f"make-prompt-fixture: T = {len(ids_a)}, {len(ids_b)}, {len(ids_c)}; {os.path.getsize(path)} bytes -> {path}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
