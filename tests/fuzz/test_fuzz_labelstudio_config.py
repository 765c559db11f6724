"""Label Studio labeling configs (XML a project's admin writes, read through Label Studio's API)
and how a model binds to one, from mutated valid configs and arbitrary text."""

from __future__ import annotations

from hypothesis import strategies as st

from formats.strategies import schemas
from fuzz.harness import fuzz_test, returns_or_refuses
from fuzz.mutations import mutate_xml
from visionloop.core.schema import TaskType
from visionloop.formats.ls_config import bind, parse_label_config

_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="class" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
  <RectangleLabels name="box" toName="image">
    <Label value="cat" predicted_values="cat,kitty"/><Label value="person"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="dog"/></PolygonLabels>
  <BrushLabels name="brush" toName="image"><Label value="cat"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image">
    <Label value="nose" model_index="0"/><Label value="tail" model_index="1"/>
  </KeyPointLabels>
</View>"""


@fuzz_test(scale=2.0)
def test_parse_and_bind_label_configs(data: st.DataObject) -> None:
    """A config and a binding, or a ``ValidationError`` that says what is missing or wrong."""
    text = data.draw(
        st.sampled_from([_CONFIG]).flatmap(lambda valid: st.builds(lambda d: mutate_xml(d, valid), st.data()))
        | st.text(max_size=80)
        | st.just(_CONFIG),
        label="config",
    )
    config = returns_or_refuses(parse_label_config, text)
    if config is None:
        return
    schema = data.draw(st.sampled_from(list(TaskType)).flatmap(schemas), label="schema")
    binding = returns_or_refuses(bind, config, schema)
    if binding is not None:
        assert binding.image_key
