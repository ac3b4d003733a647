"""Train DLKUNet on ACDC cardiac MRI (RV, Myo, LV + background) with the release's recipe.

    python Train_ACDC.py --model M --root_path ./datasets/ACDC --list_dir ./datasets/ACDC/lists_ACDC
    python Train_ACDC.py --model S --val_interval 10            # score valid/ every 10 epochs, keep best.pth
    python Train_ACDC.py --model S --continue_train             # resume from ./result/Pth/last.pth
    torchrun --nproc_per_node 4 Train_ACDC.py --model S         # DDP, one process per GPU

Validation scores the ``valid`` split volume by volume (its slices grouped by case).
Outputs, log lines and resuming are described in ``dlkunet/training.py``; ``-h`` lists every flag.
"""

from Dataloader_ACDC import CLASS_NAMES, NUM_CLASSES, ACDCdataset, RandomGenerator
from dlkunet import training
from dlkunet.errors import run_main


def get_args_parser():
    parser, _ = training.make_arg_parser(
        __doc__,
        root_path="./datasets/ACDC",
        list_dir="./datasets/ACDC/lists_ACDC",
        weight_decay=0.0,
        loss_weights=(0.4, 0.6),
        log_path="./result/Training.log",
    )
    return parser


def main(args):
    size = (args.img_size, args.img_size)
    train_set = ACDCdataset(args.root_path, args.list_dir, "train", transform=RandomGenerator(size))
    val_set = (
        ACDCdataset(args.root_path, args.list_dir, "valid", as_volumes=True) if args.val_interval else None
    )
    training.train(args, train_set, val_set, NUM_CLASSES, CLASS_NAMES)


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
