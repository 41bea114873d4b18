"""A list of files for --output-dir is named in time linear in its length: a list file of a
hundred thousand lines is a few megabytes anyone can hand over."""
import time

from scan2conv.batch_outputs import output_names


def test_output_names_of_a_long_list_take_linear_time(tmp_path):
    def seconds(n):
        files = [f"sub{i % 7}/f{i}.npy" for i in range(n)]
        start = time.process_time()
        outputs = output_names(str(tmp_path / f"out{n}"), files)
        assert len(set(outputs.values())) == n   # every clash of a name resolved by its folder
        return time.process_time() - start
    small, large = seconds(2_000), seconds(40_000)
    # 20 times the files: 20 times the work when linear, 400 times when each name counts all
    assert large < 60 * max(small, 0.01), (small, large)
