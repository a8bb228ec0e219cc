"""The Pulumi program's entry point: everything is in demo.program (which the tests also run inline)."""
import demo

demo.program()
